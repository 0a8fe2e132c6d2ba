"""Named configurations for the benchmark runs (`--preset NAME`); flags given override them."""

from __future__ import annotations

from typing import Any

from rnnlab.config import from_dict
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.training.config import TrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    # Zaremba, Sutskever & Vinyals 2014, "small": 2x200 LSTM, no dropout, SGD lr 1 halved every
    # epoch after the fourth, 13 epochs, bptt 35, batch 20, clip 5, init U(-0.1, 0.1).
    # Their loss is summed over the 35 steps of a window (and averaged over the batch); ours is
    # the mean per token, whose gradient is 35x smaller. SGD with lr 35 and clip 5/35 on the
    # mean takes exactly their steps: 35 * clip(g, 5/35) = clip(35 g, 5).
    "ptb-small": dict(
        corpus="ptb", level="word", cell="lstm", layers=2, hidden=200, embedding_size=200,
        dropout=0.0, dropout_output=0.0, batch_size=20, bptt=35, eval_batch_size=10,
        init_range=0.1, optimizer="sgd", lr=35.0, schedule="zaremba", lr_decay=0.5,
        decay_start=5, clip=5.0 / 35, epochs=13, log_every=200,
    ),
    # A regularised, tied model for PTB within 2 CPU-hours (one thread): 2x400 LSTM whose
    # decoder shares the embedding (Press & Wolf 2017), dropout 0.4 on embeddings, between
    # layers and on outputs (Zaremba et al.), SGD lr 20 on the mean loss with clip 0.25 (as
    # PyTorch's word_language_model), annealed to 0 by a cosine over 16000 steps (~12 epochs;
    # 105 minutes on one core of this machine, test ppl 85.35: benchmarks/results/lm_ptb-tied.md).
    "ptb-tied": dict(
        corpus="ptb", level="word", cell="lstm", layers=2, hidden=400, embedding_size=400,
        tie_weights=True, dropout=0.4, dropout_embedding=0.4, dropout_output=0.4,
        batch_size=20, bptt=35, eval_batch_size=10, init_range=0.1, optimizer="sgd", lr=20.0,
        schedule="cosine", max_steps=16000, clip=0.25, epochs=40, log_every=200,
    ),
    # Character model of the README's main command (Karpathy's char-rnn setting).
    "shakespeare-char": dict(
        corpus="tinyshakespeare", level="char", cell="lstm", layers=2, hidden=256,
        embedding_size=64, dropout=0.2, dropout_output=0.2, batch_size=32, bptt=64,
        optimizer="adamw", lr=3e-3, clip=1.0, epochs=50, eval_every=250, log_every=25,
        schedule="constant",
    ),
    # War and Peace at the step budget of an hour on one core (~7200 steps): lr 4e-3 beat 2e-3,
    # lower dropout, longer windows and wider or single-layer models in a GPU comparison at
    # CPU-matched budgets (benchmarks/results/warpeace_gpu_tuning.md).
    "warpeace-char": dict(
        corpus="warpeace", level="char", cell="lstm", layers=2, hidden=384, embedding_size=64,
        dropout=0.2, dropout_output=0.2, batch_size=32, bptt=100, optimizer="adamw", lr=4e-3,
        clip=1.0, epochs=50, eval_every=500, log_every=50,
    ),
    # nanoGPT's CPU recipe for Tiny Shakespeare (its README: 4 layers, 4 heads, 128 wide,
    # context 64, batch 12, 2000 iterations, no dropout; config/train_shakespeare_char.py: AdamW
    # lr 1e-3 with 100 warm-up steps and a cosine to 1e-4, beta2 0.99; train.py: weight decay
    # 0.1, clip 1, no biases). nanoGPT's README reports validation loss 1.88, one 20-batch
    # reading (seed 1337: 1.8857); its train.py over 8 seeds averages 1.907 over the whole dev
    # stream (`python benchmarks/gpt_reference.py --nanogpt-order`), rnnlab's 10 seeds 1.905.
    "shakespeare-gpt": dict(
        corpus="tinyshakespeare", level="char", model="transformer", layers=4, heads=4,
        hidden=128, block_size=64, positions="learned", norm_first=True, activation="gelu",
        bias=False, tie_weights=True, dropout=0.0, dropout_embedding=0.0, dropout_output=0.0,
        batch_size=12, eval_batch_size=12, eval_windows=20, optimizer="adamw", lr=1e-3,
        min_lr=1e-4, warmup=100, beta2=0.99, weight_decay=0.1, clip=1.0, schedule="cosine",
        max_steps=2000, epochs=100, eval_every=500, log_every=50,
    ),
    "irish-abc": dict(
        corpus="irish-abc", level="char", cell="lstm", layers=2, hidden=256, embedding_size=64,
        dropout=0.2, dropout_output=0.2, batch_size=32, bptt=64, optimizer="adamw", lr=3e-3,
        clip=1.0, epochs=60, eval_every=100, log_every=25,
    ),
}


def preset_configs(name: str, **overrides: Any) -> tuple[LMConfig, TrainConfig]:
    """The (model/data, training) configs of a preset, with `overrides` applied (falsy values,
    e.g. a flag left at 0, keep the preset's)."""
    from rnnlab.errors import RnnlabError

    if name not in PRESETS:
        raise RnnlabError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v}}
    def of(cls: type) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k in cls.__dataclass_fields__}

    return from_dict(LMConfig, of(LMConfig)), from_dict(TrainConfig, of(TrainConfig))
