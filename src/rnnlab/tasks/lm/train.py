"""Training a recurrent language model: stateful truncated BPTT over parallel token streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.data.batching import batchify, num_windows, random_windows, tbptt_windows
from rnnlab.nn.utils import detach_state
from rnnlab.tasks.fit import fit_and_plot
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.lm.model import build_lm
from rnnlab.tasks.lm.predict import score_streams, window_loss
from rnnlab.training import distributed
from rnnlab.training.config import TrainConfig
from rnnlab.training.run_dir import open_run, write_run_info


class LMTask:
    """The Trainer's view of language modelling (see training.trainer.TrainTask).

    A recurrent model reads the training streams in order, its state carried from window to
    window (truncated BPTT). A model with a fixed context (`context_length`, the Transformer)
    carries nothing, so it reads windows of its context length from random places instead
    (nanoGPT), as many per epoch as cover the training split once, and it is evaluated on the
    whole dev stream in windows of its context length.

    Data parallel (torchrun), each process trains on its own contiguous streams (columns) of
    the global batch of `batch_size` streams, the same ones all run long, so the state it
    carries is that of its own streams (`distributed.rank_columns`).
    """

    metric = "loss"
    higher_is_better = False

    def __init__(self, model: nn.Module, train: Tensor, valid: Tensor, config: LMConfig,
                 seed: int, char_level: bool) -> None:
        self.model, self.config, self.seed, self.char_level = model, config, seed, char_level
        device = next(model.parameters()).device
        self.context = getattr(model, "context_length", None)
        self.window = self.context or config.bptt
        self.train_ids = train.to(device)
        # batchify refuses, with the sizes in its message, a split too small for batch x bptt
        self.columns = distributed.rank_columns(config.batch_size)  # this process's streams
        self.train_streams = batchify(train, config.batch_size, bptt=self.window,
                                      split="train")[:, self.columns].to(device)  # (N, B_rank)
        self.valid_ids = valid.to(device)
        self.valid_streams = batchify(valid, config.eval_batch_size, bptt=1,
                                      split="valid").to(device)  # (N', B')
        self.state: Any = None
        self._epoch_batches: tuple[int, list] | None = None

    def batches(self, epoch: int) -> list[tuple[Tensor, Tensor]]:
        """The windows of an epoch; their places and lengths come from (seed, epoch) alone."""
        if self._epoch_batches is None or self._epoch_batches[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1009 + epoch)
            if self.context:
                count = num_windows(self.train_streams, self.window)
                windows = [(x[:, self.columns], y[:, self.columns])  # (T, B_rank) each
                           for x, y in random_windows(self.train_ids, self.config.batch_size,
                                                      self.window, count, generator)]
            else:
                windows = list(tbptt_windows(self.train_streams, self.config.bptt,
                                             variable=self.config.variable_bptt,
                                             generator=generator))
            self._epoch_batches = (epoch, windows)
        return self._epoch_batches[1]

    def start_epoch(self, epoch: int) -> None:
        self.state = None  # each epoch reads the streams from their start again

    def train_loss(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, int]:
        x, y = batch  # (T, B) each; y is x shifted by one token
        # The state carries what came before this window, but gradients stop at its border.
        loss, state = self.model.loss(x, y, detach_state(self.state))
        self.state = detach_state(state)
        return loss, y.numel()

    def evaluate(self) -> dict[str, float]:
        score = score_streams(self.model, self.valid_streams, self.window)
        metrics = {"loss": score.loss, "ppl": score.perplexity}
        if self.char_level:
            metrics["bpc"] = score.bits_per_token
        if self.context and self.config.eval_windows:
            metrics["window_loss"] = window_loss(self.model, self.valid_ids,
                                                 self.config.batch_size, self.window,
                                                 self.config.eval_windows, self.seed)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        state = self.state
        parts = [] if state is None else ([state] if isinstance(state, Tensor) else list(state))
        return {"state": [p.cpu() for p in parts]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        device = next(self.model.parameters()).device
        parts = [p.to(device) for p in saved["state"]]
        self.state = None if not parts else (parts[0] if len(parts) == 1 else tuple(parts))


def train_lm(config: LMConfig, train_config: TrainConfig, run_dir: Path, *,
             data_dir: str | None = None, resume: bool = False,
             show_progress: bool = True) -> dict[str, Any]:
    """Train a language model into `run_dir`; with `resume`, continue its latest checkpoint."""
    from rnnlab.data.lm_corpus import load_lm_corpus

    run_dir = Path(run_dir)
    config, device = open_run(run_dir, "lm", config, train_config, resume)
    corpus = load_lm_corpus(config, data_dir)
    torch.manual_seed(train_config.seed)
    model = build_lm(len(corpus.vocab), config).to(device)
    char_level = corpus.tokenizer.name == "char"
    if not resume and distributed.is_main():
        write_run_info(run_dir, "lm", config, train_config, model,
                       tokenizer=corpus.tokenizer.to_json(), corpus=corpus.name,
                       data_notes=corpus.notes)
        corpus.vocab.save(run_dir / "vocab.json")
    task = LMTask(model, corpus.train, corpus.valid, config, train_config.seed, char_level)
    summary = fit_and_plot(task, train_config, run_dir, resume=resume,
                           show_progress=show_progress)
    return {"run_dir": str(run_dir), "parameters": model.num_parameters(),
            "notes": corpus.notes, **summary, **distributed.shares(config.batch_size)}
