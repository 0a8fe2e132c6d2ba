"""The hierarchical attention network: masks at both levels, weights that sum to 1, one word-RNN
call for all sentences of a batch."""

import random

import pytest
import torch

from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.han import HierarchicalAttention

pytestmark = pytest.mark.usefixtures("one_thread")


def model(cell: str = "gru", bidirectional: bool = True) -> HierarchicalAttention:
    torch.manual_seed(0)
    config = ClassifyConfig(model="han", cell=cell, embedding_size=6, hidden=5,
                            attention_size=4, bidirectional=bidirectional, dropout=0.0)
    return HierarchicalAttention(30, 3, config).eval()


def documents(seed: int, count: int) -> list[list[list[int]]]:
    rng = random.Random(seed)
    return [[[rng.randrange(1, 30) for _ in range(rng.randint(1, 7))]
             for _ in range(rng.randint(1, 5))] for _ in range(count)]


@pytest.mark.parametrize("cell,bidirectional", [("gru", True), ("lstm", True), ("rnn", False)])
def test_padding_sentences_and_words_change_nothing(cell, bidirectional):
    """A document scored alone equals the same document in a batch with longer ones (more
    padding sentences, longer padded sentences), logits and both levels of weights."""
    han = model(cell, bidirectional)
    docs = documents(1, 6)
    docs.append([[3, 4, 5, 6, 7, 8, 9, 10, 11, 12]] * 9)  # forces N = 9, W = 10 for all
    with torch.no_grad():
        batch_logits, (batch_sw, batch_ww) = han(*han.collate(docs))
        for row, doc in enumerate(docs):
            logits, (sw, ww) = han(*han.collate([doc]))
            torch.testing.assert_close(batch_logits[row], logits[0], atol=1e-5, rtol=1e-5)
            n, w = ww.shape[1:]
            torch.testing.assert_close(batch_sw[row, :n], sw[0], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(batch_ww[row, :n, :w], ww[0], atol=1e-6, rtol=1e-5)


def test_weights_sum_to_one_over_real_sentences_and_words():
    han = model()
    docs = documents(2, 8)
    with torch.no_grad():
        _, (sentence_w, word_w) = han(*han.collate(docs))
    for row, doc in enumerate(docs):
        assert sentence_w[row, : len(doc)].sum().item() == pytest.approx(1.0, abs=1e-6)
        assert sentence_w[row, len(doc):].abs().sum().item() == 0.0
        for i, sentence in enumerate(doc):
            assert word_w[row, i, : len(sentence)].sum().item() == pytest.approx(1.0, abs=1e-6)
            assert word_w[row, i, len(sentence):].abs().sum().item() == 0.0
        assert word_w[row, len(doc):].abs().sum().item() == 0.0
    sw, ww = HierarchicalAttention.unpad_attention((sentence_w, word_w), 0, docs[0])
    assert len(sw) == len(docs[0]) and [len(w) for w in ww] == [len(s) for s in docs[0]]


def test_all_sentences_go_through_the_word_rnn_in_one_call():
    han = model()
    docs = documents(3, 5)
    calls = []
    han.word_rnn.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    with torch.no_grad():
        han(*han.collate(docs))
    assert len(calls) == 1 and calls[0][0] == sum(len(d) for d in docs)


def test_trains_on_a_toy_task():
    """Label = whether token 7 appears anywhere: the loss must fall well below chance."""
    han = model()
    rng = random.Random(0)
    docs = documents(4, 32)
    labels = torch.tensor([int(any(7 in s for s in d)) for d in docs])
    for doc, label in zip(docs, labels.tolist(), strict=True):
        if label == 0 and rng.random() < 0.5:
            doc[rng.randrange(len(doc))].append(7)
    labels = torch.tensor([int(any(7 in s for s in d)) for d in docs])
    han.train()
    opt = torch.optim.Adam(han.parameters(), lr=0.05)
    inputs = han.collate(docs)
    for _ in range(40):
        opt.zero_grad()
        loss = han.loss(*inputs, labels)
        loss.backward()
        opt.step()
    assert loss.item() < 0.2
