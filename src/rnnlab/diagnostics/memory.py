"""Long-range memory: synthetic tasks that need one fact from far back, and who learns them.

Two tasks from the literature, generated on the fly from a seed (no files):

- adding (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015): T steps of two inputs,
  a value u_t ~ U(0, 1) and a marker that is 1 at exactly two steps (one in each half of the
  sequence); the target is the sum of the two marked values. Always answering 1 (the mean) gives
  MSE = Var(u + u') = 2/12 ≈ 0.167; "solved" means MSE below `ADDING_MSE`.
- copy (recall): a first symbol s ∈ {0..K-1}, then T distractors drawn from the same K symbols,
  then a query symbol K; the answer at the query is s. Chance is 1/K; "solved" means accuracy of
  at least `COPY_ACCURACY` on a held-out set.

Every cell gets a hidden size that gives it (about) the same number of parameters, the same
step budget, optimiser and data; we report the longest T it solves within the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.config import field as cfg_field
from rnnlab.diagnostics.options import check_cells, check_positive
from rnnlab.errors import RnnlabError
from rnnlab.nn.factory import make_recurrent
from rnnlab.nn.utils import clip_grad_norm

TASKS = ("adding", "copy")
ADDING_MSE = 0.01  # solved: under 6% of the always-answer-the-mean MSE (1/6)
COPY_ACCURACY = 0.95  # solved: recalled the first symbol in 95% of held-out sequences
EVAL_SEED_OFFSET = 1_000_003  # the held-out set's seed differs from every training seed


def adding_batch(length: int, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """x (T, B, 2): [value, marker]; y (B,): the sum of the two marked values."""
    if length < 2:
        raise ValueError("the adding problem needs at least 2 steps")
    values = torch.rand(length, batch, generator=generator)  # (T, B)
    half = length // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, length, (batch,), generator=generator)
    markers = torch.zeros(length, batch)
    columns = torch.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = torch.stack([values, markers], dim=2)  # (T, B, 2)
    y = (values * markers).sum(0)  # (B,)
    return x, y


def copy_batch(length: int, batch: int, generator: torch.Generator,
               symbols: int = 8) -> tuple[Tensor, Tensor]:
    """x (T+2, B, K+1) one-hot: s, T distractors, the query symbol K; y (B,): s."""
    if length < 0 or symbols < 2:
        raise ValueError("the copy task needs length >= 0 and at least 2 symbols")
    tokens = torch.randint(0, symbols, (length + 1, batch), generator=generator)  # (T+1, B)
    query = torch.full((1, batch), symbols)
    sequence = torch.cat([tokens, query])  # (T+2, B)
    return F.one_hot(sequence, symbols + 1).float(), tokens[0]


@dataclass(frozen=True)
class MemoryTask:
    """One synthetic task: how to make a batch, its loss, its score and when it is solved."""

    name: str
    input_size: int
    output_size: int
    metric: str
    higher_is_better: bool
    threshold: float
    baseline: float  # the score of a model with no memory
    make_batch: Callable[[int, int, torch.Generator], tuple[Tensor, Tensor]]

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        if self.name == "adding":
            return F.mse_loss(out.squeeze(-1), y)
        return F.cross_entropy(out, y)

    def score(self, out: Tensor, y: Tensor) -> float:
        if self.name == "adding":
            return float(F.mse_loss(out.squeeze(-1), y))
        return float((out.argmax(-1) == y).float().mean())

    def solved(self, score: float) -> bool:
        return score >= self.threshold if self.higher_is_better else score < self.threshold


def make_task(name: str, symbols: int = 8) -> MemoryTask:
    if name == "adding":
        return MemoryTask("adding", 2, 1, "mse", False, ADDING_MSE, 2 / 12, adding_batch)
    if name == "copy":
        def make(length: int, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
            return copy_batch(length, batch, generator, symbols)

        return MemoryTask("copy", symbols + 1, symbols, "accuracy", True, COPY_ACCURACY,
                          1 / symbols, make)
    raise ValueError(f"unknown memory task {name!r}; choose one of {', '.join(TASKS)}")


class MemoryModel(nn.Module):
    """A one-layer recurrent layer and a linear readout of its last state."""

    def __init__(self, cell: str, input_size: int, hidden: int, output_size: int,
                 forget_bias: float = 0.0) -> None:
        super().__init__()
        self.rnn = make_recurrent(cell, input_size, hidden, forget_bias=forget_bias)
        self.readout = nn.Linear(hidden, output_size)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (T, B, H)
        return self.readout(out[-1])  # (B, O)


def count_parameters(cell: str, input_size: int, hidden: int, output_size: int) -> int:
    return sum(p.numel() for p in MemoryModel(cell, input_size, hidden, output_size).parameters())


def hidden_for_budget(cell: str, input_size: int, output_size: int, budget: int) -> int:
    """The hidden size whose model has the parameter count nearest `budget`."""
    best, best_gap, hidden = 1, math.inf, 1
    while True:
        gap = count_parameters(cell, input_size, hidden, output_size) - budget
        if abs(gap) < best_gap:
            best, best_gap = hidden, abs(gap)
        if gap > 0:
            return best
        hidden += 1


MEMORY_CELLS = ("rnn", "lstm", "gru", "gru-minimal", "lstm-peephole")
MEMORY_LENGTHS = (5, 10, 20, 40, 80)


@dataclass(frozen=True)
class MemoryConfig:
    """How each (cell, T) of `rnnlab diagnose memory` is trained (defaults live here only;
    the CLI's flags are made from these fields)."""

    task: str = cfg_field("adding", "adding problem (Hochreiter & Schmidhuber) or copy memory",
                          choices=("adding", "copy"))
    parameters: int = cfg_field(3000, "parameters per model (each cell gets about this many)", ge=1)
    steps: int = cfg_field(2000, "training step budget per (cell, T)", ge=1)
    batch: int = cfg_field(32, "sequences per training step", ge=1)
    # Adam; 1e-2 solved the adding problem at T=40 with an LSTM in 1000 steps
    lr: float = cfg_field(1e-2, "Adam learning rate", gt=0.0)
    clip: float = cfg_field(1.0, "global gradient-norm clipping", gt=0.0)
    eval_every: int = cfg_field(100, "check whether the task is solved every N steps "
                                "(training stops when it is)", ge=1)
    eval_size: int = cfg_field(1000, "held-out sequences", ge=1)
    symbols: int = cfg_field(8, "copy task alphabet size K", ge=1)
    forget_bias: float = cfg_field(0.0, "LSTM forget-gate bias at initialisation (0: torch's)")
    seed: int = cfg_field(0, "random seed", ge=0)
    # skip longer T once a cell fails one (saves compute); the CLI's --keep-going turns it off
    stop_after_failure: bool = cfg_field(True, "skip longer T once a cell fails one", cli=False)

    def __post_init__(self) -> None:
        if self.task not in ("adding", "copy"):
            raise RnnlabError(f"unknown memory task {self.task!r}; choose adding or copy")
        check_positive(self, "parameters", "steps", "batch", "lr", "eval_every", "eval_size",
                       "symbols")


@dataclass(frozen=True)
class MemoryResult:
    cell: str
    length: int
    hidden: int
    parameters: int
    solved: bool
    steps: int  # steps trained (the step it was solved at, or the whole budget)
    score: float  # held-out metric when training stopped
    seconds: float


def train_memory(cell: str, length: int, config: MemoryConfig) -> MemoryResult:
    """Train one model on one T with the step budget; stop as soon as it is solved."""
    task = make_task(config.task, config.symbols)
    hidden = hidden_for_budget(cell, task.input_size, task.output_size, config.parameters)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = MemoryModel(cell, task.input_size, hidden, task.output_size, config.forget_bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    train_gen = torch.Generator().manual_seed(config.seed)
    x_eval, y_eval = task.make_batch(
        length, config.eval_size, torch.Generator().manual_seed(config.seed + EVAL_SEED_OFFSET))
    start = time.perf_counter()
    score, step = task.baseline, 0
    while step < config.steps:
        x, y = task.make_batch(length, config.batch, train_gen)
        model.train()
        loss = task.loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(model.parameters(), config.clip)
        optimizer.step()
        step += 1
        if step % config.eval_every == 0 or step == config.steps:
            model.eval()
            with torch.no_grad():
                score = task.score(model(x_eval), y_eval)
            if task.solved(score):
                break
    return MemoryResult(cell, length, hidden, sum(p.numel() for p in model.parameters()),
                        task.solved(score), step, score, time.perf_counter() - start)


@dataclass(frozen=True)
class MemoryStudy:
    config: MemoryConfig
    cells: list[str]
    lengths: list[int]
    results: list[MemoryResult]

    def longest_solved(self, cell: str) -> int | None:
        solved = [r.length for r in self.results if r.cell == cell and r.solved]
        return max(solved) if solved else None

    def result(self, cell: str, length: int) -> MemoryResult | None:
        return next((r for r in self.results if r.cell == cell and r.length == length), None)

    def to_dict(self) -> dict:
        task = make_task(self.config.task, self.config.symbols)
        return {"config": asdict(self.config), "cells": self.cells, "lengths": self.lengths,
                "metric": task.metric, "threshold": task.threshold, "baseline": task.baseline,
                "results": [asdict(r) for r in self.results],
                "longest_solved": {c: self.longest_solved(c) for c in self.cells}}


def memory_study(cells: list[str], lengths: list[int], config: MemoryConfig,
                 progress: Callable[[MemoryResult], None] | None = None) -> MemoryStudy:
    """Every cell at every T (increasing), each from the same seed; see `MemoryConfig`."""
    check_cells(cells)
    shortest = 2 if config.task == "adding" else 1  # the adding problem marks two steps
    if not lengths or min(lengths) < shortest:
        raise RnnlabError(f"--lengths must be integers >= {shortest} for the {config.task} "
                          f"task, got {list(lengths)}")
    results = []
    for cell in cells:
        for length in sorted(lengths):
            result = train_memory(cell, length, config)
            results.append(result)
            if progress is not None:
                progress(result)
            if config.stop_after_failure and not result.solved:
                break
    return MemoryStudy(config, list(cells), sorted(lengths), results)


def memory_table(study: MemoryStudy) -> str:
    """A markdown table: the longest T solved, and the held-out score at every T."""
    c = study.config
    task = make_task(c.task, c.symbols)
    rule = (f"MSE < {task.threshold:g} (always predicting 1: {task.baseline:.3f})"
            if task.name == "adding" else
            f"accuracy ≥ {task.threshold:g} (chance {task.baseline:.3f}, K = {c.symbols})")
    bias = f", LSTM forget-gate bias {c.forget_bias:g}" if c.forget_bias else ""
    lines = [
        f"Task **{task.name}**, solved = held-out {rule}; budget {c.steps} steps of batch "
        f"{c.batch}, Adam lr {c.lr:g}, clip {c.clip:g}, ~{c.parameters} parameters per model, "
        f"seed {c.seed}{bias}. Cell entries: held-out {task.metric} (steps used); ✓ solved, ✗ not, "
        "— not run (a shorter T already failed).",
        "",
        "| cell | hidden | params | longest T solved | "
        + " | ".join(f"T={t}" for t in study.lengths) + " |",
        "|---|---|---|---|" + "---|" * len(study.lengths),
    ]
    for cell in study.cells:
        runs = [r for r in study.results if r.cell == cell]
        if not runs:
            continue
        entries = []
        for length in study.lengths:
            r = study.result(cell, length)
            entries.append("—" if r is None else
                           f"{'✓' if r.solved else '✗'} {r.score:.3g} ({r.steps})")
        longest = study.longest_solved(cell)
        lines.append(f"| {cell} | {runs[0].hidden} | {runs[0].parameters} | "
                     f"{longest if longest is not None else 'none'} | " + " | ".join(entries)
                     + " |")
    return "\n".join(lines) + "\n"
