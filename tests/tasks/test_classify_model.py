"""Pooling, attention and the two classifiers, each checked against an explicit computation
on every sentence alone (no padding), for random lengths."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from rnnlab.data.buckets import pad_batch
from rnnlab.errors import RnnlabError
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.model import (
    AttentionPooling,
    Classifier,
    TextCNN,
    last_pool,
    max_pool,
    mean_pool,
)

pytestmark = pytest.mark.usefixtures("one_thread")


lengths_lists = st.lists(st.integers(1, 7), min_size=1, max_size=5)


def _padded(lengths, size=3, seed=0):
    """(B, T, S) states with garbage (large values) past each length, and the lengths."""
    generator = torch.Generator().manual_seed(seed)
    steps = max(lengths)
    out = torch.randn(len(lengths), steps, size, generator=generator) - 1.0
    for row, n in enumerate(lengths):
        out[row, n:] = 100.0
    return out, torch.tensor(lengths)


@settings(max_examples=30, deadline=None)
@given(lengths_lists)
def test_mean_and_max_pool_ignore_padding(lengths):
    out, lens = _padded(lengths)
    for row, n in enumerate(lengths):
        own = out[row, :n]  # the sentence alone
        assert torch.allclose(mean_pool(out, lens)[row], own.mean(0))
        assert torch.equal(max_pool(out, lens)[row], own.max(0).values)


@settings(max_examples=30, deadline=None)
@given(lengths_lists)
def test_attention_weights_sum_to_one_and_vanish_on_padding(lengths):
    torch.manual_seed(0)
    pool = AttentionPooling(3, 4)
    out, lens = _padded(lengths)
    pooled, weights = pool(out, lens)
    for row, n in enumerate(lengths):
        assert torch.allclose(weights[row].sum(), torch.tensor(1.0))
        assert torch.all(weights[row, n:] == 0)
        alone, alone_weights = pool(out[row:row + 1, :n], lens[row:row + 1])
        assert torch.allclose(weights[row, :n], alone_weights[0], atol=1e-6)
        assert torch.allclose(pooled[row], alone[0], atol=1e-6)
        # the definition: softmax of v . tanh(W h + b), then the weighted sum
        energy = pool.score(torch.tanh(pool.project(out[row, :n]))).squeeze(-1)
        assert torch.allclose(alone_weights[0], torch.softmax(energy, 0), atol=1e-6)


def test_last_pool_takes_each_direction_s_final_state():
    out = torch.arange(2 * 3 * 4, dtype=torch.float).reshape(2, 3, 4)  # S = 4: 2 fwd + 2 bwd
    pooled = last_pool(out, torch.tensor([2, 3]), bidirectional=True)
    assert pooled.tolist() == [[4.0, 5.0, 2.0, 3.0], [20.0, 21.0, 14.0, 15.0]]
    assert last_pool(out, torch.tensor([2, 3]), False).tolist() == [out[0, 1].tolist(),
                                                                     out[1, 2].tolist()]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@settings(max_examples=8, deadline=None)
@given(lengths=lengths_lists)
def test_bidirectional_last_state_matches_each_sentence_run_alone(cell, lengths):
    torch.manual_seed(1)
    config = ClassifyConfig(embedding_size=5, hidden=4, cell=cell, layers=2, dropout=0.0,
                            pooling="last")
    model = Classifier(20, 3, config).eval()
    generator = torch.Generator().manual_seed(2)
    sentences = [torch.randint(4, 20, (n,), generator=generator).tolist() for n in lengths]
    tokens, lens = pad_batch(sentences)
    out, _ = model.rnn(model.embedding(tokens), lengths=lens)
    pooled = last_pool(out, lens, bidirectional=True)
    for row, sentence in enumerate(sentences):
        alone, state = model.rnn(model.embedding(torch.tensor([sentence])))
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * 2, 1, H)
        # torch's layout: the top layer's forward and backward final states come last
        expected = torch.cat([h_n[-2, 0], h_n[-1, 0]])
        assert torch.allclose(pooled[row], expected, atol=1e-5)
        assert torch.allclose(pooled[row], last_pool(alone, torch.tensor([len(sentence)]),
                                                     True)[0], atol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("model", ["rnn", "cnn"])
def test_logits_do_not_depend_on_the_batch_s_padding(pooling, model):
    torch.manual_seed(3)
    config = ClassifyConfig(model=model, embedding_size=6, hidden=5, dropout=0.0,
                            pooling=pooling, filter_widths="2,3", filter_maps=4, mlp_hidden=7)
    net = (Classifier if model == "rnn" else TextCNN)(30, 3, config).eval()
    sentences = [[5, 6, 7, 8, 9, 10, 11], [12], [13, 14, 15]]
    tokens, lens = pad_batch(sentences, min_length=3)
    batch_logits, weights = net(tokens, lens)
    for row, sentence in enumerate(sentences):
        alone, _ = net(*pad_batch([sentence], min_length=3))
        assert torch.allclose(batch_logits[row], alone[0], atol=1e-5), (pooling, row)
    assert (weights is not None) == (model == "rnn" and pooling == "attention")


def test_textcnn_is_max_over_time_of_relu_convolutions():
    torch.manual_seed(4)
    config = ClassifyConfig(model="cnn", embedding_size=3, filter_widths="2", filter_maps=2,
                            dropout=0.0)
    net = TextCNN(10, 2, config).eval()
    sentence = [4, 5, 6, 7]
    x = net.embedding(torch.tensor(sentence))  # (T, E)
    conv = net.convs[0]
    windows = [x[t:t + 2].T.reshape(-1) for t in range(3)]  # each (E * w,) in conv's layout
    maps = torch.stack([torch.relu(conv.weight.reshape(2, -1) @ w + conv.bias) for w in windows])
    expected = net.head(maps.max(0).values)
    logits, _ = net(*pad_batch([sentence, [4, 5, 6, 7, 8, 9]], min_length=2))
    assert torch.allclose(logits[0], expected, atol=1e-6)


def test_loss_is_the_mean_cross_entropy_and_trains():
    torch.manual_seed(5)
    config = dataclasses.replace(ClassifyConfig(), embedding_size=8, hidden=6, dropout=0.0)
    net = Classifier(12, 2, config)
    tokens, lens = pad_batch([[4, 4, 5], [6, 7]])
    labels = torch.tensor([0, 1])
    logits, _ = net(tokens, lens)
    expected = -torch.log_softmax(logits, -1)[torch.arange(2), labels].mean()
    assert torch.allclose(net.loss(tokens, lens, labels), expected)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        net.loss(tokens, lens, labels).backward()
        optimizer.step()
    assert net(tokens, lens)[0].argmax(-1).tolist() == [0, 1]


def test_embedding_init_range_keeps_pad_zero():
    config = ClassifyConfig(embedding_size=50, embedding_init=0.25, hidden=4)
    weight = Classifier(40, 2, config).embedding.weight
    assert weight.abs().max() <= 0.25 and weight[1:].std() > 0.1
    assert torch.all(weight[0] == 0)


@pytest.mark.parametrize("model_class", [Classifier, TextCNN])
def test_word_dropout_drops_whole_words_only_while_training(model_class):
    config = ClassifyConfig(corpus=None, word_dropout=0.3, embedding_size=8, hidden=4,
                            filter_maps=2)
    model = model_class(50, 2, config)
    tokens = torch.randint(1, 50, (40, 60))
    torch.manual_seed(0)
    model.train()
    dropped = (model.embed(tokens) == 0).all(-1).float().mean().item()
    assert 0.25 < dropped < 0.35
    model.eval()
    assert torch.equal(model.embed(tokens), model.embedding(tokens))
    with pytest.raises(RnnlabError, match="--word-dropout must be"):
        ClassifyConfig(corpus=None, word_dropout=1.0)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention", "structured", "first"])
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_transformer_logits_do_not_depend_on_the_batch_s_padding(pooling, positions):
    from rnnlab.tasks.classify.model import TransformerClassifier

    torch.manual_seed(5)
    config = ClassifyConfig(model="transformer", embedding_size=6, hidden=8, heads=2, layers=2,
                            dropout=0.0, pooling=pooling, hops=3, positions=positions)
    net = TransformerClassifier(30, 3, config).eval()
    sentences = [[5, 6, 7, 8, 9, 10, 11], [12], [13, 14, 15]]
    tokens, lens = pad_batch(sentences)
    batch_logits, weights = net(tokens, lens)
    for row, sentence in enumerate(sentences):
        alone, _ = net(*pad_batch([sentence]))
        assert torch.allclose(batch_logits[row], alone[0], atol=1e-5), (pooling, row)
    assert (weights is not None) == (pooling in ("attention", "structured"))
    if weights is not None:
        assert torch.allclose(weights.sum(-1), torch.ones(3))


def test_structured_pooling_adds_its_penalty_to_the_loss():
    from rnnlab.nn.structured_attention import attention_penalty

    torch.manual_seed(6)
    config = ClassifyConfig(embedding_size=6, hidden=5, dropout=0.0, pooling="structured",
                            hops=2, penalty=0.3)
    net = Classifier(30, 2, config).eval()
    tokens, lens = pad_batch([[5, 6, 7], [8, 9]])
    labels = torch.tensor([0, 1])
    logits, _, hops = net._logits(tokens, lens)
    expected = F.cross_entropy(logits, labels) + 0.3 * attention_penalty(hops).mean()
    assert torch.allclose(net.loss(tokens, lens, labels), expected)


def test_first_token_pooling_is_only_for_transformers():
    with pytest.raises(RnnlabError, match="pooling first"):
        ClassifyConfig(model="rnn", pooling="first")
