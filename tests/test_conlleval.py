"""`metrics.entity_scores` counts entities by conlleval's rules: an oracle written here from the
rules of conlleval.perl (startOfChunk / endOfChunk, with E-/S- read as the BIOES extension
that seqeval and flair use), checked on hand cases and on random, often ill-formed, tag
sequences; and the published figures' path (both sides converted to BIO, then seqeval's strict
IOB2) gives the same numbers as conlleval on the raw tags."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.metrics import entity_scores
from rnnlab.tasks.tag.data import to_bio


def conlleval_chunks(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) of each chunk, as conlleval.perl finds them."""
    chunks, start, kind = set(), None, None
    previous_prefix, previous_kind = "O", ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, this_kind = ("O", "") if tag == "O" else (tag[0], tag[2:])
        ends = previous_prefix != "O" and (
            prefix in ("B", "S", "O") or previous_prefix in ("E", "S")
            or this_kind != previous_kind)
        starts = prefix in ("B", "S") or (prefix in ("I", "E") and (
            previous_prefix in ("O", "E", "S") or this_kind != previous_kind))
        if ends and start is not None:
            chunks.add((kind, start, i - 1))
            start = None
        if starts:
            start, kind = i, this_kind
        previous_prefix, previous_kind = prefix, this_kind
    return chunks


def oracle_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    found = correct = expected = 0
    for g, p in zip(gold, predicted, strict=True):
        gold_chunks, predicted_chunks = conlleval_chunks(g), conlleval_chunks(p)
        found += len(predicted_chunks)
        expected += len(gold_chunks)
        correct += len(gold_chunks & predicted_chunks)
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


@pytest.mark.parametrize(
    ("tags", "chunks"),
    [
        (["I-PER"], {("PER", 0, 0)}),  # I-X after O starts a chunk
        (["I-PER", "I-PER"], {("PER", 0, 1)}),
        (["B-PER", "I-LOC"], {("PER", 0, 0), ("LOC", 1, 1)}),  # a type change starts one
        (["B-PER", "B-PER"], {("PER", 0, 0), ("PER", 1, 1)}),
        (["I-PER", "B-PER", "I-PER"], {("PER", 0, 0), ("PER", 1, 2)}),  # IOB1
        (["B-PER", "E-PER", "S-LOC"], {("PER", 0, 1), ("LOC", 2, 2)}),  # BIOES
        (["S-PER", "E-PER"], {("PER", 0, 0), ("PER", 1, 1)}),  # E after S: a new chunk
        (["E-PER", "I-PER"], {("PER", 0, 0), ("PER", 1, 1)}),  # ill-formed: E closes
        (["O", "E-ORG", "O"], {("ORG", 1, 1)}),
    ],
)
def test_conlleval_rules_by_hand(tags, chunks):
    from seqeval.metrics.sequence_labeling import get_entities  # what entity_scores counts

    assert conlleval_chunks(tags) == chunks
    assert set(get_entities(tags)) == chunks
    # a prediction that finds the first chunk only: precision 1, recall 1/len(chunks)
    kind, start, end = min(chunks, key=lambda chunk: chunk[1])
    predicted = ["O"] * len(tags)
    predicted[start: end + 1] = ["B-" + kind] + ["I-" + kind] * (end - start)
    scores = entity_scores([tags], [predicted])
    assert scores["precision"] == 1.0
    assert scores["recall"] == pytest.approx(1 / len(chunks))


TAG = st.sampled_from(["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC",
                       "S-LOC"])
BIO_TAG = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


def _pairs(tag):
    return st.lists(st.integers(1, 8), min_size=1, max_size=4).flatmap(
        lambda lengths: st.tuples(*[st.tuples(st.lists(tag, min_size=n, max_size=n),
                                              st.lists(tag, min_size=n, max_size=n))
                                    for n in lengths]))


@settings(max_examples=300, deadline=None)
@given(_pairs(TAG))
def test_entity_scores_match_the_conlleval_oracle(pairs):
    gold, predicted = [list(g) for g, _ in pairs], [list(p) for _, p in pairs]
    ours = entity_scores(gold, predicted, "BIOES")
    for key, value in oracle_scores(gold, predicted).items():
        assert ours[key] == pytest.approx(value), key


@settings(max_examples=300, deadline=None)
@given(_pairs(TAG))
def test_published_path_gives_the_same_numbers(pairs):
    """The figures published so far were computed as strict IOB2 on both sides converted to
    BIO; on any tags (softmax output included) that equals conlleval on the raw tags, so none
    of them changes with the new metric."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    gold, predicted = [list(g) for g, _ in pairs], [list(p) for _, p in pairs]
    old = f1_score([to_bio(s) for s in gold], [to_bio(s) for s in predicted], mode="strict",
                   scheme=IOB2, zero_division=0)
    assert entity_scores(gold, predicted)["f1"] == pytest.approx(float(old))
