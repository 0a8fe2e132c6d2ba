"""Training a sentence classifier: one split, or K-fold cross-validation (one run per fold).

The Trainer picks the best checkpoint by dev accuracy (early stopping with `--patience`);
after training, the best weights are scored once on the test set: accuracy, macro-F1 and a
confusion matrix (results.json and confusion-test.png in the run directory).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnlab.data.buckets import bucket_batches
from rnnlab.errors import RnnlabError
from rnnlab.metrics import signature
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.data import ClassifyData, load_classify_data
from rnnlab.tasks.classify.documents import encode_examples
from rnnlab.tasks.classify.model import build_model, min_length
from rnnlab.tasks.classify.predict import (  # noqa: F401 - classify_ids, score: re-exported
    classify_ids,
    collate,
    report_split,
    score,
    score_probabilities,
)
from rnnlab.tasks.fit import fit_and_plot
from rnnlab.training import distributed
from rnnlab.training.checkpoint import CONFIG_FILE, MODEL_FILE, load_weights, read_json, write_json
from rnnlab.training.config import TrainConfig
from rnnlab.training.lock import release_run_lock
from rnnlab.training.run_dir import open_run, write_run_info

RESULTS_FILE = "results.json"


class ClassifyTask:
    """The Trainer's view of classification (see training.trainer.TrainTask)."""

    metric = "accuracy"
    higher_is_better = True

    def __init__(self, model: torch.nn.Module, data: ClassifyData, config: ClassifyConfig,
                 seed: int) -> None:
        self.model, self.data, self.config, self.seed = model, data, config, seed
        self.ids, self.labels = encode_examples(data, data.train, config)
        self.lengths = [len(s) for s in self.ids]  # tokens, or a document's sentences
        self.device = next(model.parameters()).device

    def batches(self, epoch: int) -> list[list[int]]:
        """Length-bucketed, shuffled batches of example indices: a function of (seed, epoch);
        data parallel, this process's share of each (`distributed.share`)."""
        return distributed.share_batches(
            bucket_batches(self.lengths, self.config.batch_size, seed=self.seed, epoch=epoch))

    def start_epoch(self, epoch: int) -> None:
        """Sentences are independent: nothing carries over from one epoch to the next."""

    def train_loss(self, batch: list[int]) -> tuple[Tensor, int]:
        inputs = collate(self.model, [self.ids[i] for i in batch],
                         min_length(self.config))  # tokens (B, T) and lengths (B,), or more
        labels = torch.tensor([self.labels[i] for i in batch], device=self.device)  # (B,)
        return self.model.loss(*(t.to(self.device) for t in inputs), labels), len(batch)

    def evaluate(self) -> dict[str, float]:
        result = score(self.model, self.data, self.data.valid, self.config)
        return {k: result[k] for k in ("accuracy", "macro_f1", "loss")}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Nothing to restore: the batches of an epoch depend on (seed, epoch) only."""


def train_classify(config: ClassifyConfig, train_config: TrainConfig, run_dir: Path, *,
                   data_dir: str | None = None, resume: bool = False,
                   show_progress: bool = True) -> dict[str, Any]:
    """Train into `run_dir` (with `folds` and `fold=-1`: one run per fold, see
    `cross_validate`); with `resume`, continue the run's latest checkpoint."""
    run_dir = Path(run_dir)
    config, device = open_run(run_dir, "classify", config, train_config, resume)
    if config.folds and config.fold < 0:
        if distributed.is_distributed():
            raise RnnlabError("--folds: cross-validation trains one small model per fold; "
                              "run it without torchrun")
        return cross_validate(config, train_config, run_dir, data_dir=data_dir, resume=resume,
                              show_progress=show_progress)
    data = load_classify_data(config, data_dir)
    torch.manual_seed(train_config.seed)
    model = build_model(config, len(data.vocab), len(data.labels))
    notes = list(data.notes)
    if config.embeddings:
        from rnnlab.data.embeddings import load_pretrained

        pretrained = load_pretrained(config.embeddings, data.vocab, config.embedding_size)
        model.embedding.weight.data.copy_(pretrained.vectors)
        model.embedding.weight.requires_grad_(not config.freeze)
        notes.append(f"embeddings {config.embeddings}: {pretrained.summary()}")
    model.to(device)
    if not resume and distributed.is_main():
        write_run_info(run_dir, "classify", config, train_config, model, labels=data.labels,
                       corpus=data.name, data_notes=notes)
        data.vocab.save(run_dir / "vocab.json")
    task = ClassifyTask(model, data, config, train_config.seed)
    if hasattr(model, "fit_ratios"):  # NBSVM: log-count ratios of the training documents
        model.fit_ratios(task.ids, task.labels)
    summary = fit_and_plot(task, train_config, run_dir, resume=resume,
                           show_progress=show_progress)
    if not distributed.is_main():  # rank 0 scores the best weights and writes the results
        return {"run_dir": str(run_dir), **summary, **distributed.shares(config.batch_size)}
    load_weights(model, run_dir / MODEL_FILE)  # the best dev checkpoint, not the last step
    if data.read_test is not None:  # a test set scored only by `eval --split test`
        dev = report_split(run_dir, model, data, config, "valid")
        write_json(run_dir / RESULTS_FILE, {"summary": summary, "valid": dev})
        return {"run_dir": str(run_dir), "parameters": model.num_parameters(), "notes": notes,
                **summary, "dev_accuracy": dev["accuracy"], "signature": dev["signature"],
                "test": f"not scored: run `rnnlab eval {run_dir} --split test`"}
    test = report_split(run_dir, model, data, config)
    write_json(run_dir / RESULTS_FILE, {"summary": summary, "test": test})
    return {"run_dir": str(run_dir), "parameters": model.num_parameters(), "notes": notes,
            **summary, "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
            "confusion_png": test["confusion_png"], "signature": test["signature"]}


def cross_validate(config: ClassifyConfig, train_config: TrainConfig, run_dir: Path, *,
                   data_dir: str | None = None, resume: bool = False,
                   show_progress: bool = True, budget_minutes: float = 0.0) -> dict[str, Any]:
    """One model per fold in run_dir/fold-K, each tested on its own fold; mean and standard
    deviation over folds. A resumed run skips finished folds and resumes the unfinished one.

    With `budget_minutes`, no new fold starts once that much time has passed: the result then
    says `"stopped"` and lists the finished folds, and a resumed call trains the rest (ten
    folds of a recurrent model can take longer than one sitting).
    """
    started = time.monotonic()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_run_info(run_dir, "classify", config, train_config, checkpoints=False,
                       cross_validation=True)
        release_run_lock(run_dir)  # each fold's training locks its own folder
    folds = []
    for k in range(config.folds):
        fold_dir = run_dir / f"fold-{k}"
        if (fold_dir / RESULTS_FILE).exists():
            saved = read_json(fold_dir / RESULTS_FILE)
            folds.append({"fold": k, "test_accuracy": saved["test"]["accuracy"],
                          "test_macro_f1": saved["test"]["macro_f1"],
                          "seconds": saved["summary"]["seconds"]})
            continue
        if budget_minutes and time.monotonic() - started >= budget_minutes * 60:
            return {"run_dir": str(run_dir), "folds": folds,
                    "stopped": f"time budget after {len(folds)} of {config.folds} folds: "
                               "resume the run to train the others"}
        summary = train_classify(dataclasses.replace(config, fold=k), train_config, fold_dir,
                                 data_dir=data_dir, show_progress=show_progress,
                                 resume=resume and (fold_dir / CONFIG_FILE).exists())
        folds.append({"fold": k, "test_accuracy": summary["test_accuracy"],
                      "test_macro_f1": summary["test_macro_f1"], "seconds": summary["seconds"]})
    result = cv_summary(folds)
    result["signature"] = signature(metric="accuracy", corpus=config.corpus or config.train,
                                    split=f"{config.folds}-fold-cv", tok="word",
                                    model=config.model)
    write_json(run_dir / RESULTS_FILE, result)
    return {"run_dir": str(run_dir), **result}


def cv_summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and (sample) standard deviation of the folds' test accuracy and macro-F1."""
    def spread(key: str) -> tuple[float, float]:
        values = [f[key] for f in folds]
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    acc_mean, acc_std = spread("test_accuracy")
    f1_mean, f1_std = spread("test_macro_f1")
    return {"folds": folds, "test_accuracy": acc_mean, "test_accuracy_std": acc_std,
            "test_macro_f1": f1_mean, "test_macro_f1_std": f1_std,
            "seconds": round(sum(f["seconds"] for f in folds), 1)}
