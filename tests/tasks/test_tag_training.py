"""The tagger end to end on small generated data: padding, learning, exact resume, read back."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.errors import RnnlabError
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.data import Sentence
from rnnlab.tasks.tag.encode import TagVocab, collate
from rnnlab.tasks.tag.model import Tagger
from rnnlab.tasks.tag.run import TagRun
from rnnlab.tasks.tag.train import build_model, train_tag
from rnnlab.training.checkpoint import latest_checkpoint
from rnnlab.training.config import TrainConfig

NAMES = {"Anna": "PER", "Bert": "PER", "Paris": "LOC", "Oslo": "LOC"}
FILLER = ["we", "met", "in", "and", "saw", "the", "city"]


def _sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """Names are one-word entities, "New York" a two-word one, the rest O (tags in IOB1)."""
    words, tags = [], []
    for _ in range(rng.randint(2, 6)):
        words.append(rng.choice(FILLER))
        tags.append("O")
        chance = rng.random()
        if chance < 0.3:
            name = rng.choice(list(NAMES))
            words.append(name)
            tags.append("I-" + NAMES[name])
        elif chance < 0.4:
            words += ["New", "York"]
            tags += ["I-LOC", "I-LOC"]
    return words, tags


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("tag")
    paths = {}
    for split, count in (("train", 100), ("valid", 30)):
        blocks = []
        for _ in range(count):
            words, tags = _sentence(rng)
            blocks.append("\n".join(f"{w} NN {t}" for w, t in zip(words, tags, strict=True)))
        paths[split] = folder / f"{split}.txt"
        paths[split].write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return paths


def _config(files, **overrides) -> TagConfig:
    values = dict(corpus=None, train=str(files["train"]), valid=str(files["valid"]),
                  word_embedding_size=12, char_embedding_size=6, char_hidden=5, hidden=10,
                  dropout=0.2, batch_size=8, eval_batch_size=16)
    values.update(overrides)
    return TagConfig(**values)


@pytest.mark.parametrize("char_features", ["none", "lstm", "cnn"])
@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.parametrize("model_kind", ["rnn", "transformer"])
def test_padding_never_changes_a_sentences_scores(char_features, crf, model_kind):
    sentences = [Sentence(["Anna", "met", "Bert", "in", "Oslo"], ["I-PER", "O", "I-PER", "O",
                                                                  "I-LOC"]),
                 Sentence(["we"], ["O"])]
    vocab = TagVocab.build(sentences, 1, lowercase=False)
    config = TagConfig(char_features=char_features, crf=crf, word_embedding_size=6,
                       char_embedding_size=4, char_hidden=3, hidden=6, heads=2, layers=2,
                       model=model_kind)
    torch.manual_seed(0)
    model = Tagger(config, len(vocab.words), len(vocab.chars), len(vocab.tags)).eval()
    encoded = [vocab.encode(s) for s in sentences]
    both = collate(encoded)
    alone = collate(encoded[1:])
    scores_both = model.emissions(both)  # (2, 5, K)
    assert scores_both.shape == (2, 5, len(vocab.tags))
    torch.testing.assert_close(scores_both[1, :1], model.emissions(alone)[0], atol=1e-6, rtol=0)
    assert model.decode(both)[1] == model.decode(alone)[0]
    loss = model.train().loss(both)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all()
                                        for p in model.parameters() if p.grad is not None)


def test_crf_tagger_learns_the_entities_and_reads_back(tmp_path, files):
    config = _config(files, crf=True, scheme="bioes", dropout=0.0, unk_replace=0.0)
    train = TrainConfig(optimizer="adamw", lr=2e-2, epochs=6, seed=3, threads=1)
    summary = train_tag(config, train, tmp_path / "run", show_progress=False)
    assert summary["metric"] == "f1"
    assert summary["valid"]["f1"] > 0.9, summary["valid"]  # untrained: near 0
    run = TagRun(tmp_path / "run", "cpu")
    assert run.scheme == "bioes"
    assert run.tag([["we", "saw", "Anna"]], "bio") == [["O", "O", "B-PER"]]
    assert run.tag([["in", "New", "York"]], "bio") == [["O", "B-LOC", "I-LOC"]]
    assert run.tag([["in", "New", "York"]], "bioes") == [["O", "B-LOC", "E-LOC"]]
    assert run.tag([["in", "New", "York"]], "iob1") == [["O", "I-LOC", "I-LOC"]]
    result = run.evaluate("valid")
    assert result["f1"] == pytest.approx(summary["valid"]["f1"])
    assert "PER" in result["report"] and result["signature"].startswith("f1|")
    with pytest.raises(RnnlabError, match="no test split"):
        run.evaluate("test")


def test_resumed_run_equals_uninterrupted_run(tmp_path, files):
    config = _config(files, crf=True, char_features="lstm", unk_replace=0.5)
    train = TrainConfig(optimizer="adamw", lr=3e-3, epochs=3, eval_every=7, log_every=5,
                        seed=11, threads=1)
    full = dataclasses.replace(train, max_steps=24)
    half = dataclasses.replace(train, max_steps=10)
    train_tag(config, full, tmp_path / "full", show_progress=False)
    train_tag(config, half, tmp_path / "split", show_progress=False)
    summary = train_tag(config, full, tmp_path / "split", resume=True, show_progress=False)
    assert summary["steps"] == 24
    a = load_file(str(latest_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "split") / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_crf_constraints_follow_the_scheme(files):
    sentences = [Sentence(["Anna", "Bert", "met"], ["B-PER", "I-PER", "O"])]
    vocab = TagVocab.build(sentences, 1, lowercase=False)
    model = build_model(TagConfig(crf=True), vocab, "bio")
    ids = {t: i for i, t in enumerate(vocab.tags)}
    assert not model.crf.allowed_transitions[ids["O"], ids["I-PER"]]
    assert not model.crf.allowed_start[ids["I-PER"]]
    free = build_model(TagConfig(crf=True, constrained=False), vocab, "bio")
    assert free.crf.allowed_transitions.all()


def test_unknown_dev_tag_does_not_break_training_but_unknown_train_tag_is_clear(files):
    vocab = TagVocab.build([Sentence(["a"], ["O"])], 1, lowercase=True)
    with pytest.raises(RnnlabError, match="tag 'B-X' is not among the 1 tags"):
        vocab.encode(Sentence(["A"], ["B-X"]), "train")
    assert vocab.encode(Sentence(["A"], [])).words == [vocab.words.stoi["a"]]


def test_pretrained_frozen_embeddings_are_loaded_and_kept(tmp_path, files):
    vector = [0.5] * 12
    glove = tmp_path / "vectors.txt"
    glove.write_text("anna " + " ".join(map(str, vector)) + "\n", encoding="utf-8")
    config = _config(files, embeddings=str(glove), freeze_embeddings=True, lowercase=True)
    summary = train_tag(config, TrainConfig(max_steps=3, threads=1), tmp_path / "run",
                        show_progress=False)
    assert any("1 of" in note for note in summary["notes"])
    run = TagRun(tmp_path / "run", "cpu")
    row = run.model.embedding.weight[run.vocab.words.stoi["anna"]]
    assert row.tolist() == vector


def test_zero_digits_and_lowercase_share_word_ids_but_not_characters():
    sentences = [Sentence(["Paris", "1987", "paris", "2003"], ["B-LOC", "O", "B-LOC", "O"])]
    plain = TagVocab.build(sentences, 1, lowercase=False)
    folded = TagVocab.build(sentences, 1, lowercase=True, zero_digits=True)
    assert len(plain.words) == len(folded.words) + 2  # Paris/paris and 1987/2003 merged
    encoded = folded.encode(Sentence(["PARIS", "1066"], ["B-LOC", "O"]))
    assert encoded.words == folded.encode(sentences[0]).words[:2]
    assert encoded.words[1] == folded.words.stoi["0000"]
    assert encoded.chars[1] == folded.chars.encode("1066")  # characters keep the digits


def test_zero_digits_is_kept_by_a_saved_run(tmp_path, files):
    config = _config(files, zero_digits=True, lowercase=True)
    train = TrainConfig(optimizer="adamw", lr=1e-2, epochs=1, seed=1, threads=1)
    train_tag(config, train, tmp_path / "run", show_progress=False)
    run = TagRun(tmp_path / "run", "cpu")
    assert run.vocab.zero_digits and run.vocab.lowercase
    assert run.vocab.key("Year 1987") == "year 0000"
