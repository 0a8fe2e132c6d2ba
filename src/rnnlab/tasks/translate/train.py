"""Training a translation model with the shared Trainer: bucketed batches, dev BLEU or ppl."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from rnnlab.data.buckets import bucket_batches, pad_batch
from rnnlab.errors import RnnlabError
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.data import ParallelData, Split, make_batch
from rnnlab.tasks.translate.model import Seq2Seq
from rnnlab.training.config import TrainConfig
from rnnlab.training.run_dir import fit_and_plot, open_run, write_run_info

EVAL_BATCH = 128  # sentences per batch when scoring or decoding (no gradients: memory is small)


def corpus_nll(model: Seq2Seq, split: Split, data: ParallelData) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the references given the sources, and the
    number of target tokens (each sentence's <eos> included): plain cross-entropy, no smoothing."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for indices in bucket_batches([len(s) for s in split.src], EVAL_BATCH, shuffle=False):
        batch = make_batch([split.src[i] for i in indices], [split.tgt[i] for i in indices],
                           data.tgt_vocab).to(device)
        loss, tokens = model.loss(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out,
                                  label_smoothing=0.0)
        total += float(loss) * tokens
        count += tokens
    return total, count


def translate_ids(model: Seq2Seq, sources: list[list[int]], data: ParallelData, *,
                  beam: int = 1, alpha: float = 0.0, batch_size: int = EVAL_BATCH,
                  n_best: int = 1) -> list:
    """Hypotheses for source id lists, in input order (decoded in length-sorted batches)."""
    device = next(model.parameters()).device
    config, vocab = model.config, data.tgt_vocab
    results: list = [None] * len(sources)
    for indices in bucket_batches([len(s) for s in sources], batch_size, shuffle=False):
        src, lengths = pad_batch([sources[i] for i in indices], vocab.pad_id)
        hypotheses = model.translate(src.to(device), lengths, vocab.bos_id, vocab.eos_id,
                                     beam=beam, alpha=alpha, max_len_ratio=config.max_len_ratio,
                                     max_len_extra=config.max_len_extra, n_best=n_best)
        for i, hypothesis in zip(indices, hypotheses, strict=True):
            results[i] = hypothesis
    return results


def detokenize(hypothesis: Any, data: ParallelData) -> str:
    return data.tgt_tokenizer.detokenize(data.tgt_vocab.decode(hypothesis.tokens))


class TranslateTask:
    """The Trainer's view of translation (see training.trainer.TrainTask)."""

    def __init__(self, model: Seq2Seq, data: ParallelData, config: TranslateConfig,
                 seed: int) -> None:
        self.model, self.data, self.config, self.seed = model, data, config, seed
        self.metric = config.dev_metric
        self.higher_is_better = config.dev_metric == "bleu"
        self.train = data.splits["train"]
        self.valid = data.splits["valid"]
        self.device = next(model.parameters()).device
        self._lengths = [max(len(s), len(t)) for s, t in zip(self.train.src, self.train.tgt,
                                                             strict=True)]

    def batches(self, epoch: int) -> list[list[int]]:
        return bucket_batches(self._lengths, self.config.batch_size, seed=self.seed, epoch=epoch)

    def start_epoch(self, epoch: int) -> None:
        """Nothing carries over between epochs (sentence pairs are independent)."""

    def train_loss(self, indices: list[int]) -> tuple[torch.Tensor, int]:
        batch = make_batch([self.train.src[i] for i in indices],
                           [self.train.tgt[i] for i in indices],
                           self.data.tgt_vocab).to(self.device)
        return self.model.loss(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)

    def evaluate(self) -> dict[str, float]:
        """Dev cross-entropy and perplexity; with dev_metric bleu also greedy dev BLEU (sacrebleu,
        lower-cased, on the first dev_sentences sentences if set)."""
        nll, count = corpus_nll(self.model, self.valid, self.data)
        metrics = {"loss": nll / count, "ppl": math.exp(min(nll / count, 700.0))}
        if self.metric == "bleu":
            from rnnlab.metrics import bleu_chrf

            n = self.config.dev_sentences or len(self.valid.src)
            hypotheses = translate_ids(self.model, self.valid.src[:n], self.data)
            text = [detokenize(h, self.data) for h in hypotheses]
            scores = bleu_chrf(text, self.valid.tgt_text[:n], lowercase=True)
            metrics["bleu"], metrics["chrf"] = scores["bleu"], scores["chrf"]
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {}  # batches depend on (seed, epoch) only

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """No state of its own to restore."""


def train_translate(config: TranslateConfig, train_config: TrainConfig, run_dir: Path, *,
                    data_dir: str | None = None, resume: bool = False,
                    show_progress: bool = True) -> dict[str, Any]:
    """Train an encoder-decoder into `run_dir`; with `resume`, continue its latest checkpoint."""
    from rnnlab.tasks.translate.data import load_parallel

    run_dir = Path(run_dir)
    config, device = open_run(run_dir, "translate", config, train_config, resume)
    data = load_parallel(config, data_dir, splits=("train", "valid"))
    if "valid" not in data.splits:
        raise RnnlabError("training needs validation files: --src-valid and --tgt-valid")
    torch.manual_seed(train_config.seed)
    model = Seq2Seq(len(data.src_vocab), len(data.tgt_vocab), config,
                    pad_id=data.tgt_vocab.pad_id).to(device)
    if not resume:
        write_run_info(run_dir, "translate", config, train_config, model,
                       src_tokenizer=data.src_tokenizer.to_json(),
                       tgt_tokenizer=data.tgt_tokenizer.to_json(), corpus=data.name,
                       data_notes=data.notes)
        data.src_vocab.save(run_dir / "src_vocab.json")
        data.tgt_vocab.save(run_dir / "tgt_vocab.json")
    task = TranslateTask(model, data, config, train_config.seed)
    summary = fit_and_plot(task, train_config, run_dir, resume=resume,
                           show_progress=show_progress)
    return {"run_dir": str(run_dir), "parameters": model.num_parameters(),
            "notes": data.notes, **summary}
