"""Tag sentences with a trained Tagger, and score predicted tags against gold ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

from rnnlab.data.buckets import bucket_batches
from rnnlab.metrics import accuracy, entity_scores, signature
from rnnlab.nn.crf import viterbi
from rnnlab.tasks.tag.config import TagConfig
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


@torch.no_grad()
def ensemble_tags(members: list[tuple[Tagger, TagVocab]], sentences: list[Sentence],
                  batch_size: int) -> list[list[str]]:
    """The tags several taggers of the same tag set choose together: the path with the highest
    mean score (CRF members: mean emissions and transitions, then Viterbi), or each word's tag
    with the highest mean log-probability (softmax members); both maximise the geometric mean
    of the members' probabilities."""
    tags = members[0][1].tags
    device = next(members[0][0].parameters()).device
    words_only = [Sentence(s.words, []) for s in sentences]
    encoded = [[vocab.encode(s) for s in words_only] for _, vocab in members]
    predicted: list[list[str]] = [[] for _ in sentences]
    states = [model.training for model, _ in members]
    for model, _ in members:
        model.eval()
    try:
        for indices in bucket_batches([len(s.words) for s in sentences], batch_size,
                                      shuffle=False):
            scores, mask = [], None
            for (model, _), member_encoded in zip(members, encoded, strict=True):
                batch = collate([member_encoded[i] for i in indices]).to(device)
                emissions = model.emissions(batch)  # (B, T, K)
                scores.append(emissions if model.crf else F.log_softmax(emissions, dim=2))
                mask = batch.mask
            mean = torch.stack(scores).mean(0)  # (B, T, K)
            if members[0][0].crf is not None:
                crf_scores = [model.crf.scores() for model, _ in members]  # (start, A, end)
                start, transitions, end = (torch.stack([s[k] for s in crf_scores]).mean(0)
                                           for k in range(3))
                paths = viterbi(mean, mask, start, transitions, end)
            else:
                lengths = mask.sum(1).tolist()
                paths = [row[:n] for row, n in zip(mean.argmax(2).tolist(), lengths, strict=True)]
            for i, path in zip(indices, paths, strict=True):
                predicted[i] = [tags[t] for t in path]
    finally:
        for (model, _), state in zip(members, states, strict=True):
            model.train(state)
    return predicted


def timed_scores(predict: Callable[[list[Sentence]], list[list[str]]],
                 sentences: list[Sentence], scheme: str) -> dict[str, Any]:
    """Metrics of `predict` on gold-tagged sentences, and its tagging speed."""
    started = time.perf_counter()
    predicted = predict(sentences)
    seconds = time.perf_counter() - started
    tokens = sum(len(s.words) for s in sentences)
    scores = tag_metrics([s.tags for s in sentences], predicted, scheme)
    return {**scores, "sentences": len(sentences), "tokens": tokens,
            "tokens_per_second": round(tokens / max(seconds, 1e-9), 1)}


def tag_metrics(gold: list[list[str]], predicted: list[list[str]], scheme: str) -> dict[str, Any]:
    """Token accuracy; for entity schemes also entity precision/recall/F1 (and the per-type
    report) with conlleval's chunks (`metrics.entity_scores`), on both sides converted to BIO
    (which by conlleval's rules leaves every chunk as it was: an I-X that opens an entity
    becomes B-X), so that the report and the signature name one scheme for every run."""
    flat_gold = [t for sentence in gold for t in sentence]
    flat_predicted = [t for sentence in predicted for t in sentence]
    result: dict[str, Any] = {"accuracy": accuracy(flat_gold, flat_predicted)}
    if scheme != "none":
        scores = entity_scores([to_bio(s) for s in gold], [to_bio(s) for s in predicted], "BIO")
        result.update(scores)
    return result


def evaluate_sentences(model: Tagger, vocab: TagVocab, sentences: list[Sentence], scheme: str,
                       batch_size: int) -> dict[str, Any]:
    """Metrics of the model on gold-tagged sentences, and its tagging speed."""
    return timed_scores(lambda batch: predict_tags(model, vocab, batch, batch_size), sentences,
                        scheme)


def tag_signature(scores: dict[str, Any], corpus: str, split: str, scheme: str,
                  config: TagConfig, members: int = 1) -> str:
    metric = "accuracy" if scheme == "none" else "f1"
    parts: dict[str, Any] = {"metric": metric, "corpus": corpus, "split": split}
    if scheme == "none":
        parts["field"] = config.field if corpus.startswith("ud-") else "tag"
    else:
        parts.update(scheme=f"{scheme}->bio", eval="conlleval")
    parts["output"] = "crf" if config.crf else "softmax"
    if members > 1:
        parts["ensemble"] = members
    return signature(**parts)
