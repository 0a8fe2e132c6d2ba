"""Parallel data: the documented word tokenization, line alignment, filtering, batches."""

from __future__ import annotations

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.data import SentenceTokenizer, load_parallel, make_batch, read_parallel


@pytest.mark.parametrize("line, tokens", [
    ("A man's T-shirt, (red)!", ["a", "man's", "t-shirt", ",", "(", "red", ")", "!"]),
    ("Zwei Männer   stehen.", ["zwei", "männer", "stehen", "."]),
    ('He said "hi"', ["he", "said", '"', "hi", '"']),
    ("", []),
])
def test_word_tokenization(line, tokens):
    assert SentenceTokenizer().encode(line) == tokens


def test_detokenize_reattaches_punctuation():
    tokenizer = SentenceTokenizer()
    assert tokenizer.detokenize(tokenizer.encode("A dog (brown), runs!")) == "a dog (brown), runs!"


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_line_count_mismatch_is_a_clear_error(tmp_path):
    src = _write(tmp_path / "a.de", ["eins", "zwei", "drei"])
    tgt = _write(tmp_path / "a.en", ["one", "two"])
    with pytest.raises(RnnlabError, match=r"a\.de has 3 lines but .*a\.en has 2"):
        read_parallel(src, tgt)


def test_user_files_vocab_filtering_and_batches(tmp_path):
    src = _write(tmp_path / "t.de", ["ein hund", "ein hund läuft weit weg", "", "die katze"])
    tgt = _write(tmp_path / "t.en", ["a dog", "a dog runs far away", "empty", "the cat"])
    config = TranslateConfig(corpus=None, src_train=src, tgt_train=tgt, src_valid=src,
                             tgt_valid=tgt, min_freq=1, max_len=3)
    data = load_parallel(config)
    train, valid = data.splits["train"], data.splits["valid"]
    assert train.tgt_text == ["a dog", "the cat"]  # too long and empty pairs dropped
    assert len(valid.src) == 4  # evaluation splits are never filtered
    assert any("dropped 2 of 4" in note for note in data.notes)
    assert data.src_vocab.decode(train.src[0]) == ["ein", "hund", "<eos>"]
    batch = make_batch(train.src, train.tgt, data.tgt_vocab)
    assert batch.tgt_in[:, 0].tolist() == [data.tgt_vocab.bos_id] * 2
    assert batch.tgt_out[0].tolist() == [*train.tgt[0], data.tgt_vocab.eos_id]
    assert batch.src_lengths.tolist() == [3, 3]


def test_one_sided_user_split_is_an_error(tmp_path):
    src = _write(tmp_path / "t.de", ["ein hund"])
    tgt = _write(tmp_path / "t.en", ["a dog"])
    config = TranslateConfig(corpus=None, src_train=src, tgt_train=tgt, src_valid=src)
    with pytest.raises(RnnlabError, match="go together"):
        load_parallel(config)


def test_subword_tokenizer_round_trip(tmp_path):
    pytest.importorskip("sentencepiece")
    lines = [f"der hund {w} schnell über die straße" for w in
             ("läuft", "rennt", "springt", "geht", "kriecht")] * 20
    tokenizer = SentenceTokenizer.train(lines, subwords=25)
    rebuilt = SentenceTokenizer.from_json(tokenizer.to_json())
    pieces = rebuilt.encode("Der Hund rennt schnell")
    assert rebuilt.name == "subword" and len(pieces) >= 4
    assert rebuilt.detokenize(pieces) == "der hund rennt schnell"
