"""Tokenizers: round trips, <eos> per line, saving and rebuilding."""

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    WordTokenizer,
    make_tokenizer,
    tokenizer_from_json,
)
from rnnlab.data.vocab import EOS
from rnnlab.errors import RnnlabError

WORD = st.text(st.characters(blacklist_categories=("Cs", "Z", "Cc")), min_size=1, max_size=6)
LINE = st.lists(WORD.filter(lambda w: w != EOS), max_size=5).map(" ".join)


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_char_round_trip(text):
    tok = CharTokenizer()
    tokens = tok.encode(text)
    assert len(tokens) == len(text)
    assert tok.detokenize(tokens) == text


@settings(max_examples=50, deadline=None)
@given(st.lists(LINE, max_size=6))
def test_word_round_trip_of_normalised_text(lines):
    text = "".join(line + "\n" for line in lines)  # single spaces, every line ended
    tok = WordTokenizer()
    tokens = tok.encode(text)
    assert tokens.count(EOS) == len(lines)
    assert tok.detokenize(tokens) == text
    if lines and lines[-1]:  # a missing final newline still ends the last line
        assert tok.encode(text[:-1]) == tokens


def test_word_eos_per_line_like_ptb():
    text = " the cat sat \n\n a dog\n"
    assert WordTokenizer().encode(text) == ["the", "cat", "sat", EOS, EOS, "a", "dog", EOS]
    assert WordTokenizer().detokenize(["a", "b", EOS, "c"]) == "a b\nc"
    flat = WordTokenizer(eos_per_line=False)
    assert flat.encode(text) == ["the", "cat", "sat", "a", "dog"]
    assert flat.detokenize(["a", "b"]) == "a b"


def test_only_newline_splits_lines():
    # form feed and U+2028 are not line ends (as when iterating over a file's lines)
    assert WordTokenizer().encode("a\x0cb\u2028c\n") == ["a", "b", "c", EOS]
    assert WordTokenizer().encode("a\x0cb\u2028c\n").count(EOS) == 1


@pytest.mark.parametrize("tok", [CharTokenizer(), WordTokenizer(), WordTokenizer(False)])
def test_json_round_trip(tok):
    rebuilt = tokenizer_from_json(tok.to_json())
    assert type(rebuilt) is type(tok) and rebuilt.to_json() == tok.to_json()
    text = "to be\nor not\n"
    assert rebuilt.encode(text) == tok.encode(text)


def test_unknown_names():
    with pytest.raises(RnnlabError, match="unknown tokenizer 'bpe'"):
        tokenizer_from_json({"name": "bpe"})
    with pytest.raises(RnnlabError, match="unknown tokenizer level"):
        make_tokenizer("bytes")


def test_sentencepiece_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # makes the import fail
    with pytest.raises(RnnlabError, match="pip install sentencepiece"):
        SentencePieceTokenizer.train("a b c\n", 10)


def _toy_text():
    words = ["lowest", "newer", "wider", "low", "new", "wide", "slower", "newest"]
    return "".join(" ".join(words[(i + j) % 8] for j in range(6)) + "\n" for i in range(200))


def test_sentencepiece_train_round_trip_and_json():
    pytest.importorskip("sentencepiece")
    text = _toy_text()
    tok = SentencePieceTokenizer.train(text, vocab_size=20)
    assert len(tok) == 20
    three_lines = "".join(text.splitlines(keepends=True)[:3])
    assert tok.encode(three_lines).count(EOS) == 3
    assert tok.detokenize(tok.encode(text)) == text
    rebuilt = tokenizer_from_json(tok.to_json())
    assert rebuilt.encode(text[:200]) == tok.encode(text[:200])
    again = SentencePieceTokenizer.train(text, vocab_size=20)
    assert again.model_proto == tok.model_proto  # deterministic


def test_sentencepiece_vocab_too_large():
    pytest.importorskip("sentencepiece")
    with pytest.raises(RnnlabError, match="use a smaller subword vocab size"):
        SentencePieceTokenizer.train("ab ba\n" * 5, vocab_size=5000)
