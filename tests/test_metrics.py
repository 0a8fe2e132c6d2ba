import math

import pytest

from rnnlab.metrics import (
    accuracy,
    bleu_chrf,
    confusion_matrix,
    entity_scores,
    macro_f1,
    perplexity,
)


def test_classification_metrics():
    gold, pred = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    assert accuracy(gold, pred) == pytest.approx(0.6)
    assert confusion_matrix(gold, pred, 3) == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    # F1 per class: 0: 2*1/(2+2)=0.5, 1: 2*2/(2+3)=0.8, 2: 0
    assert macro_f1(gold, pred, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert perplexity(math.log(10) * 4, 4) == pytest.approx(10)


def test_entity_scores_count_chunks_as_conlleval():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    scores = entity_scores(gold, pred, "BIO")
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert "PER" in scores["report"]
    # conlleval: an I-X after O starts a chunk (seqeval's strict IOB2 mode scored this 0)
    assert entity_scores([["B-PER"]], [["I-PER"]], "BIO")["f1"] == 1.0
    with pytest.raises(ValueError, match="unknown tag scheme"):
        entity_scores(gold, pred, "BILOU")


def test_bleu_chrf_match_sacrebleu_identity():
    scores = bleu_chrf(["a man rides a horse ."], ["a man rides a horse ."])
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["bleu_signature"].startswith("nrefs:1")
    assert bleu_chrf(["x y z"], ["a b c d"])["bleu"] < 1.0
