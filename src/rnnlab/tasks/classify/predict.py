"""Inference with a trained classifier: class probabilities of token ids, the metrics of a
labelled split and its confusion matrix (training's dev and test scores, and `ClassifyRun`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.data.buckets import bucket_batches, pad_batch
from rnnlab.metrics import accuracy, confusion_matrix, macro_f1, signature
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.data import ClassifyData, Example
from rnnlab.tasks.classify.documents import encode_examples
from rnnlab.tasks.classify.model import min_length


def collate(model: torch.nn.Module, sequences: list, pad_to: int) -> tuple[Tensor, ...]:
    """A batch as the model reads it: its own `collate` (documents of sentences), else padded
    token ids (B, T) with their lengths (B,)."""
    own = getattr(model, "collate", None)
    return own(sequences) if own is not None else pad_batch(sequences, min_length=pad_to)


@torch.no_grad()
def classify_ids(model: torch.nn.Module, ids: list[list], batch_size: int,
                 pad_to: int) -> tuple[Tensor, list[Any]]:
    """Class probabilities (N, C) for token-id lists, in their order, and each text's
    attention weights over its own tokens (a document's: per sentence and per word; None for
    models without attention)."""
    model.eval()
    device = next(model.parameters()).device
    unpad = getattr(model, "unpad_attention", None)
    probs: list[Tensor | None] = [None] * len(ids)
    weights: list[Any] = [None] * len(ids)
    for batch in bucket_batches([len(s) for s in ids], batch_size, shuffle=False):
        inputs = collate(model, [ids[i] for i in batch], pad_to)
        logits, attention = model(*(t.to(device) for t in inputs))
        batch_probs = torch.softmax(logits.float(), -1).cpu()  # (b, C)
        rows = attention.cpu().tolist() if attention is not None and not unpad else None
        for row, index in enumerate(batch):
            probs[index] = batch_probs[row]
            if attention is not None:
                weights[index] = (unpad(attention, row, ids[index]) if unpad else
                                  rows[row][: len(ids[index])])
    return torch.stack(probs), weights


def score(model: torch.nn.Module, data: ClassifyData, examples: list[Example],
          config: ClassifyConfig) -> dict[str, Any]:
    """Accuracy, macro-F1, mean loss and the confusion matrix of `examples`."""
    ids, gold = encode_examples(data, examples, config)
    probs, _ = classify_ids(model, ids, config.eval_batch_size, min_length(config))
    return score_probabilities(probs, gold)


def score_probabilities(probs: Tensor, gold: list[int]) -> dict[str, Any]:
    """The same metrics from class probabilities (N, C) that are already computed."""
    predicted = probs.argmax(-1).tolist()
    classes = probs.shape[-1]
    loss = F.nll_loss(probs.clamp_min(1e-12).log(), torch.tensor(gold)).item()
    return {"accuracy": accuracy(gold, predicted),
            "macro_f1": macro_f1(gold, predicted, classes), "loss": loss,
            "sentences": len(gold), "confusion": confusion_matrix(gold, predicted, classes)}


def report_split(run_dir: Path, model: torch.nn.Module, data: ClassifyData,
                config: ClassifyConfig, split: str = "test") -> dict[str, Any]:
    """Score `split` with the model as loaded, and draw its confusion matrix next to the run."""
    from rnnlab.plots import plot_confusion_matrix

    result = score(model, data, data.split(split), config)
    png = plot_confusion_matrix(result["confusion"], data.labels,
                                run_dir / f"confusion-{split}.png",
                                title=f"{data.name} {split}: accuracy {result['accuracy']:.4f}")
    fold = f"{config.fold}/{config.folds}" if config.folds else "none"
    return {"split": split, **result, "labels": data.labels, "confusion_png": str(png),
            "signature": signature(metric="accuracy", corpus=data.name, split=split, fold=fold,
                                   tok="word", vocab=len(data.vocab), model=config.model)}
