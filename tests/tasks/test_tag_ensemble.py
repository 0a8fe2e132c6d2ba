"""Tagger ensembles: the chosen tags are the best under the members' summed scores, checked by
enumerating every tag sequence of small sentences."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.data import Sentence
from rnnlab.tasks.tag.encode import TagVocab, collate
from rnnlab.tasks.tag.model import Tagger
from rnnlab.tasks.tag.predict import ensemble_tags, predict_tags

SENTENCES = [Sentence(["Anna", "met", "Bert", "in", "Oslo"], ["B-PER", "O", "B-PER", "O",
                                                              "B-LOC"]),
             Sentence(["we", "saw", "Paris"], ["O", "O", "B-LOC"]),
             Sentence(["Oslo"], ["B-LOC"])]


def _members(crf: bool, count: int = 3) -> list[tuple[Tagger, TagVocab]]:
    members = []
    for seed in range(count):
        # members may read words differently: the second looks them up lower-cased
        vocab = TagVocab.build(SENTENCES, 1, lowercase=seed == 1)
        config = TagConfig(crf=crf, constrained=False, word_embedding_size=6,
                           char_embedding_size=4, char_hidden=3, hidden=5)
        torch.manual_seed(seed)
        model = Tagger(config, len(vocab.words), len(vocab.chars), len(vocab.tags)).eval()
        if crf:  # transitions as large as the emissions, so that they matter
            with torch.no_grad():
                model.crf.transitions.normal_(0, 1.0)
        members.append((model, vocab))
    return members


def _summed_scores(members: list[tuple[Tagger, TagVocab]], sentence: Sentence,
                   paths: torch.Tensor) -> torch.Tensor:
    """Each path's score (N,) summed over the members: CRF path scores or log-probabilities."""
    total = torch.zeros(len(paths))
    for model, vocab in members:
        batch = collate([vocab.encode(Sentence(sentence.words, []))])
        emissions = model.emissions(batch).expand(len(paths), -1, -1)  # (N, T, K)
        if model.crf is not None:
            total += model.crf.path_score(emissions, paths, batch.mask.expand(len(paths), -1))
        else:
            total += F.log_softmax(emissions, dim=2).gather(2, paths.unsqueeze(2)).sum((1, 2))
    return total


@pytest.mark.parametrize("crf", [True, False])
@torch.no_grad()
def test_ensemble_chooses_the_best_path_under_the_summed_scores(crf):
    members = _members(crf)
    tags = members[0][1].tags
    chosen = ensemble_tags(members, SENTENCES, batch_size=2)
    for sentence, predicted in zip(SENTENCES, chosen, strict=True):
        paths = torch.tensor(list(itertools.product(range(len(tags)),
                                                    repeat=len(sentence.words))))
        best = paths[_summed_scores(members, sentence, paths).argmax()]
        assert predicted == [tags[k] for k in best.tolist()]


@torch.no_grad()
def test_an_ensemble_of_one_model_twice_is_that_model():
    model, vocab = _members(crf=True, count=1)[0]
    alone = predict_tags(model, vocab, SENTENCES, batch_size=2)
    assert ensemble_tags([(model, vocab), (model, vocab)], SENTENCES, batch_size=2) == alone
