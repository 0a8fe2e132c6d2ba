"""Tag sentences with a trained Tagger, and score predicted tags against gold ones."""

from __future__ import annotations

from typing import Any

import torch

from rnnlab.data.buckets import bucket_batches
from rnnlab.metrics import accuracy, entity_scores
from rnnlab.tasks.tag.data import Sentence, to_bio
from rnnlab.tasks.tag.encode import TagVocab, collate
from rnnlab.tasks.tag.model import Tagger


def predict_tags(model: Tagger, vocab: TagVocab, sentences: list[Sentence],
                 batch_size: int) -> list[list[str]]:
    """The model's tags for each sentence (gold tags, if any, are ignored), in input order."""
    device = next(model.parameters()).device
    words_only = [Sentence(s.words, []) for s in sentences]
    encoded = [vocab.encode(s) for s in words_only]
    predicted: list[list[str]] = [[] for _ in sentences]
    was_training = model.training
    model.eval()
    try:
        # longest first, so each batch pads little (the order is restored below)
        for indices in bucket_batches([len(e.words) for e in encoded], batch_size, shuffle=False):
            batch = collate([encoded[i] for i in indices]).to(device)
            with torch.no_grad():
                paths = model.decode(batch)
            for i, path in zip(indices, paths, strict=True):
                predicted[i] = [vocab.tags[t] for t in path]
    finally:
        model.train(was_training)
    return predicted


def tag_metrics(gold: list[list[str]], predicted: list[list[str]], scheme: str) -> dict[str, Any]:
    """Token accuracy; for entity schemes also entity precision/recall/F1 (and the per-type
    report), computed on both sides converted to BIO, as the CoNLL script reads the tags: an
    I-X that opens an entity counts as B-X (so softmax and CRF are scored alike)."""
    flat_gold = [t for sentence in gold for t in sentence]
    flat_predicted = [t for sentence in predicted for t in sentence]
    result: dict[str, Any] = {"accuracy": accuracy(flat_gold, flat_predicted)}
    if scheme != "none":
        scores = entity_scores([to_bio(s) for s in gold], [to_bio(s) for s in predicted], "BIO")
        result.update(scores)
    return result
