"""Training a translation model with the shared Trainer: bucketed batches, dev BLEU or ppl."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from rnnlab.data.buckets import bucket_batches
from rnnlab.errors import RnnlabError
from rnnlab.tasks.fit import fit_and_plot
from rnnlab.tasks.translate.build import build_model
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.data import ParallelData, make_batch
from rnnlab.tasks.translate.predict import (  # noqa: F401 - re-exported
    EVAL_BATCH,
    corpus_nll,
    detokenize,
    translate_ids,
)
from rnnlab.tasks.translate.translator import Translator
from rnnlab.training import distributed
from rnnlab.training.config import TrainConfig
from rnnlab.training.run_dir import open_run, write_run_info


class TranslateTask:
    """The Trainer's view of translation (see training.trainer.TrainTask)."""

    def __init__(self, model: Translator, data: ParallelData, config: TranslateConfig,
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
        """Length-bucketed batches of (seed, epoch); data parallel, this process's share."""
        return distributed.share_batches(
            bucket_batches(self._lengths, self.config.batch_size, seed=self.seed, epoch=epoch))

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
    model = build_model(len(data.src_vocab), len(data.tgt_vocab), config,
                        pad_id=data.tgt_vocab.pad_id).to(device)
    if not resume and distributed.is_main():
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
            "notes": data.notes, **summary, **distributed.shares(config.batch_size)}
