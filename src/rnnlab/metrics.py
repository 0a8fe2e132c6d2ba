"""Metrics with the signature of how they were made (sacrebleu's habit)."""

from __future__ import annotations

import math

import torch

from rnnlab import __version__


def perplexity(nll: float, tokens: int) -> float:
    """exp of the mean negative log-likelihood in nats."""
    return math.exp(min(nll / max(tokens, 1), 700.0))


def bits_per_token(nll: float, tokens: int) -> float:
    return nll / max(tokens, 1) / math.log(2)


def signature(**parts: object) -> str:
    """E.g. `ppl|corpus:ptb|split:test|tok:word|vocab:10000|rnnlab:0.1.0|torch:2.13.0`."""
    fields = [f"{k}:{v}" for k, v in parts.items() if k != "metric"]
    fields += [f"rnnlab:{__version__}", f"torch:{torch.__version__.split('+')[0]}"]
    return "|".join([str(parts.get("metric", "metric")), *fields])


# -- classification ---------------------------------------------------------------------------


def confusion_matrix(gold: list[int], predicted: list[int], num_classes: int) -> list[list[int]]:
    """matrix[g][p] = how many examples of gold class g were predicted as p."""
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for g, p in zip(gold, predicted, strict=True):
        matrix[g][p] += 1
    return matrix


def accuracy(gold: list, predicted: list) -> float:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / max(len(gold), 1)


def macro_f1(gold: list[int], predicted: list[int], num_classes: int) -> float:
    """Mean over classes of F1 (a class never gold nor predicted counts as F1 = 0, as sklearn's
    `zero_division=0`, only if it appears in neither; such classes are left out of the mean)."""
    matrix = confusion_matrix(gold, predicted, num_classes)
    scores = []
    for c in range(num_classes):
        tp = matrix[c][c]
        gold_c = sum(matrix[c])
        pred_c = sum(row[c] for row in matrix)
        if gold_c == 0 and pred_c == 0:
            continue
        scores.append(2 * tp / (gold_c + pred_c))
    return sum(scores) / max(len(scores), 1)


# -- sequence labelling (conlleval's chunks, via seqeval) -------------------------------------

ENTITY_SCHEMES = ("BIO", "IOB2", "IOB1", "BIOES", "IOBES")


def entity_scores(gold: list[list[str]], predicted: list[list[str]],
                  scheme: str = "BIO") -> dict:
    """Entity-level precision/recall/F1 (micro) and the per-type report, with the chunks the
    CoNLL script (conlleval) reads from the tags: a chunk starts at B-X, at S-X, and at an
    I-X or E-X that follows O, another type, or an E-/S- that closed a chunk; it ends before a
    tag that starts one, before O, and after E-/S-. So ill-formed output (a softmax tagger's
    I-PER after O) is scored as conlleval scores it, and IOB1, BIO and BIOES alike.

    This is seqeval's default mode, its port of conlleval (extended with E-/S- as flair and
    seqeval read BIOES), not its strict mode, which drops a chunk that opens with I-.
    `scheme` only names what the tags are in (checked); the chunk rules cover all of them.
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    if scheme.upper() not in ENTITY_SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; one of {', '.join(ENTITY_SCHEMES)}")
    any_entity = any(t != "O" for sentence in (*gold, *predicted) for t in sentence)
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        # seqeval's report fails on tags with no entity at all
        "report": classification_report(gold, predicted, digits=4, zero_division=0)
        if any_entity else "no entities in the gold or predicted tags",
    }


# -- translation (sacrebleu) -------------------------------------------------------------------


def bleu_chrf(hypotheses: list[str], references: list[str], lowercase: bool = False) -> dict:
    """Corpus BLEU and chrF of detokenized text, with sacrebleu's signatures."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
