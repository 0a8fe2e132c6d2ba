"""A trained classifier read back from its run directory: predict texts, evaluate a split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnlab.data.vocab import Vocab
from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.metrics import signature
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.data import ClassifyData, load_classify_data
from rnnlab.tasks.classify.documents import (
    encode_example,
    encode_examples,
    text_example,
    tokens_read,
)
from rnnlab.tasks.classify.model import build_model, min_length
from rnnlab.tasks.classify.predict import classify_ids, report_split, score_probabilities
from rnnlab.tasks.classify.train import RESULTS_FILE, cv_summary
from rnnlab.tasks.ensemble import load_members, require_same_data
from rnnlab.tasks.registry import last_split, load_run
from rnnlab.training.run_dir import RunInfo

SPLITS = ("train", "valid", "test")
# What decides which sentences are in a split: ensemble members must agree on all of it.
DATA_FIELDS = ("corpus", "train", "valid", "test", "file_format", "label_column", "text_column",
               "folds", "fold", "split_seed", "dev_fraction", "test_fraction")


@dataclass(frozen=True)
class Prediction:
    text: str
    tokens: list[str]  # as the model read them (truncated to max_len)
    label: str
    probabilities: dict[str, float]  # label -> probability, in the run's label order
    attention: list[float] | None  # one weight per token (attention pooling only)
    # Documents (han): the sentences read, each sentence's weight and its words' weights.
    sentences: list[list[str]] | None = None
    sentence_attention: list[float] | None = None
    word_attention: list[list[float]] | None = None

    def to_json(self) -> dict[str, Any]:
        record = {"text": self.text, "label": self.label, "probabilities": self.probabilities}
        if self.sentences is not None and self.sentence_attention is not None:
            record.update(sentences=self.sentences, sentence_attention=self.sentence_attention,
                          word_attention=self.word_attention)
        elif self.attention is not None:
            record["tokens"] = self.tokens
            record["attention"] = self.attention
        return record


def _read_info(run_dir: Path) -> RunInfo:

    return load_run(run_dir, task="classify")


class ClassifyRun:
    def __init__(self, run_dir: str | Path, device: str = "auto") -> None:
        self.run_dir = Path(run_dir)
        self.saved = _read_info(self.run_dir)
        self.info: dict[str, Any] = dict(self.saved.record)
        if self.saved.extra.get("cross_validation"):
            raise RnnlabError(f"{self.run_dir} is a cross-validation run: use one of its folds "
                              f"({self.run_dir / 'fold-0'}, ...)")
        self.config: ClassifyConfig = self.saved.config
        self.labels: list[str] = list(self.saved.extra["labels"])
        self.vocab = Vocab.load(self.saved.file("vocab.json"))
        self.device = resolve_device(device)
        self.model = self.saved.load_model(
            build_model(self.config, len(self.vocab), len(self.labels)), self.device)

    def read(self, texts: list[str]) -> tuple[list[list[str]], Tensor, list[list[float] | None]]:
        """Each text's tokens as the model reads them, class probabilities (N, C) and (with
        attention pooling) word weights."""
        if not texts:  # nothing to batch: an empty answer, not an error from deep inside torch
            return [], torch.empty(0, len(self.labels)), []
        token_lists, ids = [], []
        for number, text in enumerate(texts, 1):
            example = text_example(text, self.config)
            if not example.tokens:
                raise RnnlabError(f"text {number} is empty: nothing to classify")
            token_lists.append(tokens_read(example, self.config))
            ids.append(encode_example(self.vocab, example, self.config))
        probs, weights = classify_ids(self.model, ids, self.config.eval_batch_size,
                                      min_length(self.config))
        return token_lists, probs, weights

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Label, class probabilities and (with attention pooling) word weights per text."""
        token_lists, probs, weights = self.read(texts)
        return _predictions(texts, token_lists, probs, weights, self.labels)

    def split_probabilities(self, split: str | None, data_dir: str | None = None
                            ) -> tuple[Tensor, list[int], ClassifyData]:
        """Class probabilities of every sentence of `split` (None: the last the data has),
        their gold label ids, the data."""
        data = self._data(split, data_dir)
        ids, gold = encode_examples(data, data.split(split or last_split(data)), self.config)
        probs, _ = classify_ids(self.model, ids, self.config.eval_batch_size,
                                min_length(self.config))
        return probs, gold, data

    def _data(self, split: str | None, data_dir: str | None) -> ClassifyData:
        if split is not None and split not in SPLITS:
            raise RnnlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return load_classify_data(self.config, data_dir, vocab=self.vocab, labels=self.labels)

    def evaluate(self, split: str | None = None, data_dir: str | None = None
                 ) -> dict[str, Any]:
        """Accuracy, macro-F1, confusion matrix (and its PNG in the run directory) on `split`
        (default: the last split the data has: test, else valid)."""
        data = self._data(split, data_dir)
        return report_split(self.run_dir, self.model, data, self.config,
                            split or last_split(data))


class ClassifyEnsemble:
    """Several classifiers of the same labels (typically one setting trained with different
    seeds) that decide together by their mean class probabilities, as OpenNMT's ensemble
    decoding averages its models: independent errors partly cancel."""

    def __init__(self, run_dirs: list[str | Path], device: str = "auto") -> None:
        self.runs = load_members(run_dirs, lambda run_dir: ClassifyRun(run_dir, device))
        first = self.runs[0]
        for run in self.runs[1:]:
            if run.labels != first.labels:
                raise RnnlabError(f"{run.run_dir} predicts labels {run.labels} but {first.run_dir} "
                                  f"predicts {first.labels}: an ensemble needs the same labels")
        self.labels = first.labels

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Label and mean class probabilities per text (no attention: the members differ)."""
        readings = [run.read(texts) for run in self.runs]
        probs = torch.stack([probs for _, probs, _ in readings]).mean(0)
        return _predictions(texts, readings[0][0], probs, [None] * len(texts), self.labels)

    def evaluate(self, split: str | None = None, data_dir: str | None = None
                 ) -> dict[str, Any]:
        """The ensemble's accuracy, macro-F1 and confusion matrix on `split` (default: the
        last the data has), with each member's accuracy beside it; the confusion PNG goes to
        the first member's directory."""
        from rnnlab.plots import plot_confusion_matrix

        first = self.runs[0]
        require_same_data([(run.run_dir, run.config) for run in self.runs], DATA_FIELDS,
                          split or "evaluation")
        members = []
        for run in self.runs:
            probs, gold, data = run.split_probabilities(split, data_dir)
            members.append(probs)
        split = split or last_split(data)
        result = score_probabilities(torch.stack(members).mean(0), gold)
        png = plot_confusion_matrix(
            result["confusion"], self.labels, first.run_dir / f"confusion-{split}-ensemble.png",
            title=f"{data.name} {split}, ensemble of {len(self.runs)}: accuracy "
                  f"{result['accuracy']:.4f}")
        member_accuracy = [score_probabilities(p, gold)["accuracy"] for p in members]
        models = "+".join(sorted({run.config.model for run in self.runs}))
        return {"split": split, **result, "labels": self.labels, "confusion_png": str(png),
                "members": [str(run.run_dir) for run in self.runs],
                "member_accuracy": member_accuracy,
                "signature": signature(metric="accuracy", corpus=data.name, split=split,
                                       tok="word", model=models, ensemble=len(self.runs))}


def _predictions(texts: list[str], token_lists: list[list], probs: Tensor,
                 weights: list[Any], labels: list[str]) -> list[Prediction]:
    predictions = []
    for text, tokens, p, w in zip(texts, token_lists, probs.tolist(), weights, strict=True):
        label = labels[max(range(len(p)), key=p.__getitem__)]  # the first of equal maxima
        probabilities = dict(zip(labels, p, strict=True))
        if tokens and isinstance(tokens[0], list):  # a document read as sentences (han)
            sentence_w, word_w = w if w is not None else (None, None)
            predictions.append(Prediction(text, [t for s in tokens for t in s], label,
                                          probabilities, None, tokens, sentence_w, word_w))
        else:
            predictions.append(Prediction(text, tokens, label, probabilities, w))
    return predictions


def evaluate_run(run_dir: str | Path, split: str | None = None, data_dir: str | None = None,
                 device: str = "auto") -> dict[str, Any]:
    """`evaluate` for a single run; for a cross-validation run, each fold on its own held-out
    part (`split` names which part of each fold) and the mean and deviation over folds."""
    run_dir = Path(run_dir)
    info = _read_info(run_dir)
    if not info.extra.get("cross_validation"):
        return ClassifyRun(run_dir, device).evaluate(split, data_dir)
    folds = []
    for k in range(info.config.folds):
        fold_dir = run_dir / f"fold-{k}"
        if not (fold_dir / RESULTS_FILE).exists():
            raise RnnlabError(f"{fold_dir} has not finished training: resume the run first")
        result = ClassifyRun(fold_dir, device).evaluate(split, data_dir)
        split = result["split"]
        folds.append({"fold": k, "test_accuracy": result["accuracy"],
                      "test_macro_f1": result["macro_f1"], "seconds": 0.0})
    summary = cv_summary(folds)
    summary.pop("seconds")
    return {"split": split, **summary}
