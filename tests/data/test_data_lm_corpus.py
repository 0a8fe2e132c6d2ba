"""load_lm_corpus: the per-corpus rules on the real files (skipped without them) and on files
generated here (wikitext-2 format, a user's own files)."""

import pytest
import torch

from rnnlab.data.io import normalise_newlines, read_text
from rnnlab.data.lm_corpus import LMDataConfig, load_lm_corpus
from rnnlab.data.registry import ENV_VAR, bundled_path, corpus_path
from rnnlab.data.vocab import EOS, SPECIALS, UNK
from rnnlab.errors import RnnlabError


def _real(name):
    try:
        return corpus_path(name)
    except RnnlabError:
        pytest.skip(f"{name} is not in the data directory")


def _text(corpus, split):
    return corpus.tokenizer.detokenize(corpus.vocab.decode(getattr(corpus, split).tolist()))


def test_tinyshakespeare_90_10_in_order():
    raw = read_text(bundled_path("tinyshakespeare"))  # the copy inside the package: no skip
    corpus = load_lm_corpus("tinyshakespeare")  # a data directory's copy if one has it
    assert corpus.level == "char" and corpus.test is None
    assert len(corpus.train) == int(len(raw) * 0.9) == 1_003_854  # nanoGPT's cut
    assert len(corpus.valid) == 111_540
    assert len(corpus.vocab) == 65 + len(SPECIALS)
    assert _text(corpus, "valid") == raw[1_003_854:]
    assert _text(corpus, "train")[:1000] == raw[:1000]
    assert corpus.signature == {"corpus": "tinyshakespeare", "tok": "char", "vocab": "69"}
    assert corpus.notes == []


def test_tinyshakespeare_from_bundled_copy(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))  # an empty data directory
    corpus = load_lm_corpus("tinyshakespeare")
    assert (len(corpus.train), len(corpus.valid)) == (1_003_854, 111_540)
    assert any("bundled" in note for note in corpus.notes)
    assert _text(corpus, "train").startswith("First Citizen:\nBefore we proceed any further")


def test_warpeace_normalised_and_80_10_10():
    raw = (_real("warpeace") / "input.txt").read_bytes().decode("utf-8")
    clean, _ = normalise_newlines(raw)
    corpus = load_lm_corpus("warpeace")
    assert "warpeace: removed a BOM and converted 62191 CRLF line ends to LF" in corpus.notes
    n = len(clean)
    assert n == 3_203_273 - 1  # the README's count (text mode already turns CRLF to LF) - BOM
    a, b = int(n * 0.8), int(n * 0.9)
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (a, b - a, n - b)
    assert "\r" not in corpus.vocab and "\ufeff" not in corpus.vocab
    assert _text(corpus, "train")[:500] == clean[:500]
    assert corpus.test.tolist() == corpus.vocab.encode(clean[b:])  # the end, in order
    assert corpus.split_rule == "in order from input.txt: train 80%, valid 10%, test 10%"


@pytest.fixture(scope="module")
def ptb():
    _real("ptb")
    return load_lm_corpus("ptb")


def test_ptb_eos_per_line_and_sizes(ptb):
    folder = _real("ptb")
    lines = (folder / "ptb.valid.txt").read_text().splitlines()
    assert ptb.level == "word"
    assert (len(ptb.train), len(ptb.valid), len(ptb.test)) == (929_589, 73_760, 82_430)
    assert int((ptb.valid == ptb.vocab.eos_id).sum()) == len(lines) == 3_370
    first = lines[0].split() + [EOS]
    assert ptb.vocab.decode(ptb.valid[: len(first)].tolist()) == first


def test_ptb_vocab_is_10000_words(ptb):
    # 10,000 types in train counting <eos>; <unk> and <eos> are two of them and are also
    # specials, so the vocab holds 9,998 ordinary words + 4 specials (<pad> <bos> never occur)
    assert len(ptb.vocab) == 10_002
    words = set(ptb.vocab.itos) - set(SPECIALS)
    assert len(words) + len({UNK, EOS}) == 10_000
    assert ptb.notes == []  # no valid/test word is outside the training vocabulary
    assert ptb.signature["vocab"] == "10002"


def _wikitext(folder, words):
    """Files in WikiText-2's .tokens format: heading lines, blank lines of one space."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 30), ("valid", 6), ("test", 6)):
        lines = []
        for i in range(n):
            lines += [" ", f" = Heading {i} = ", " "]
            lines.append(" " + " ".join(words[(i + j) % len(words)] for j in range(8)) + " ")
        if split != "train":
            lines.append(" zebra @-@ unseen ")
        (folder / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_wikitext2_on_generated_files(tmp_path):
    _wikitext(tmp_path / "wikitext-2", ["the", "<unk>", "cat", "sat", "on", "mat", ","])
    corpus = load_lm_corpus("wikitext-2", tmp_path)
    assert corpus.level == "word"
    train_lines = (tmp_path / "wikitext-2" / "wiki.train.tokens").read_text().count("\n")
    assert int((corpus.train == corpus.vocab.eos_id).sum()) == train_lines == 120
    assert corpus.vocab.decode(corpus.train[:5].tolist()) == [EOS, "=", "Heading", "0", "="]
    assert "zebra" not in corpus.vocab  # vocab from train only
    valid_words = corpus.vocab.decode(corpus.valid.tolist())
    assert valid_words[-4:] == [UNK, UNK, UNK, EOS]  # zebra @-@ unseen
    assert "valid: 3 of " in " ".join(corpus.notes)  # the literal <unk>s are not counted
    assert corpus.split_rule.startswith("given files: train=wiki.train.tokens")


def test_own_file_split_last_10_percent(tmp_path):
    path = tmp_path / "mine.txt"
    text = "".join(f"line {i}\n" for i in range(100))
    path.write_text(text)
    corpus = load_lm_corpus(LMDataConfig(train=path))
    assert corpus.name == "mine.txt" and corpus.level == "char" and corpus.test is None
    cut = int(len(text) * 0.9)
    assert _text(corpus, "train") == text[:cut] and len(corpus.valid) == len(text) - cut
    assert any("last 10% of mine.txt is the valid split" in n for n in corpus.notes)

    words = load_lm_corpus(LMDataConfig(train=path, level="word", test_fraction=0.1))
    assert _text(words, "train").endswith("\n")  # word-level cuts move to a line start
    lines = len(words.tokenizer.detokenize(words.vocab.decode(words.valid.tolist())).split("\n"))
    assert lines > 5 and words.test is not None


def test_own_files_train_valid_test(tmp_path):
    for name, text in (("tr", "a b c\na b\n"), ("va", "a z\n"), ("te", "\ufeffb c\r\n")):
        (tmp_path / name).write_text(text, encoding="utf-8", newline="")
    corpus = load_lm_corpus(LMDataConfig(train=tmp_path / "tr", valid=tmp_path / "va",
                                         test=tmp_path / "te", level="word"))
    assert corpus.vocab.decode(corpus.valid.tolist()) == ["a", UNK, EOS]
    assert corpus.vocab.decode(corpus.test.tolist()) == ["b", "c", EOS]
    assert "te: removed a BOM and converted 1 CRLF line ends to LF" in corpus.notes
    assert "valid: 1 of 3 tokens" in " ".join(corpus.notes)


def test_vocab_pruning(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a a a b b c\n" * 10 + "d\n")
    kept = load_lm_corpus(LMDataConfig(train=path, valid=path, level="word", min_freq=2))
    assert kept.vocab.itos[4:] == ["a", "b", "c"]  # d seen once
    pruned = load_lm_corpus(LMDataConfig(train=path, valid=path, level="word", max_vocab=2))
    assert pruned.vocab.itos[4:] == ["a", "b"]


def test_subword_level(tmp_path):
    pytest.importorskip("sentencepiece")
    path = tmp_path / "t.txt"
    words = ["lowest", "newer", "wider", "low", "new", "wide", "slower", "newest"]
    path.write_text("".join(" ".join(words[(i + j) % 8] for j in range(6)) + "\n"
                            for i in range(300)))
    corpus = load_lm_corpus(LMDataConfig(train=path, level="subword", subword_vocab=20))
    assert corpus.level == "subword" and corpus.tokenizer.name == "subword"
    assert corpus.valid.dtype == torch.long and len(corpus.vocab) <= 20 + 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either a corpus name or a train file"),
        ({"corpus": "sst2"}, "sst2 is a classify corpus; language-model corpora: tinyshakespeare"),
        ({"corpus": "ptb", "valid_fraction": 0.2}, "ptb comes in split files"),
        ({"corpus": "ptb", "level": "bytes"}, "--level must be one of char, word, subword"),
        ({"corpus": "ptb", "min_freq": 0}, "--min-freq must be at least 1, got 0"),
        ({"corpus": "nope"}, "unknown corpus 'nope'"),
    ],
)
def test_errors(kwargs, message, tmp_path, monkeypatch):
    # a stand-in ptb: its checksum is not the real one, and these errors are about options
    monkeypatch.setattr("rnnlab.data.registry.verify_files", lambda *args: 0)
    folder = tmp_path / "ptb"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt").write_text(" a b \n")
    with pytest.raises(RnnlabError, match=message):
        load_lm_corpus(LMDataConfig(**{"corpus": None, **kwargs}), tmp_path)


def test_too_small_to_split(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("a")
    with pytest.raises(RnnlabError, match="tiny.txt is too small to split"):
        load_lm_corpus(LMDataConfig(train=path))


def test_reuses_a_saved_vocab_and_tokenizer(tmp_path):
    """A trained run evaluates with its own vocab and tokenizer, whatever the files hold."""
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("a b c\n" * 20)
    second.write_text("c d\n" * 20)
    made = load_lm_corpus(LMDataConfig(train=first, level="word"))
    again = load_lm_corpus(LMDataConfig(train=second), vocab=made.vocab, tokenizer=made.tokenizer)
    assert again.vocab is made.vocab and again.level == "word"
    assert again.vocab.decode(again.train[:3].tolist()) == ["c", UNK, EOS]
    with pytest.raises(RnnlabError, match="level 'char' does not match the word tokenizer"):
        load_lm_corpus(LMDataConfig(train=second, level="char"), tokenizer=made.tokenizer)
