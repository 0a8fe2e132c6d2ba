"""Classification data: tokenizer, readers and their line-naming errors, seeded splits, and a
slice of the real corpora (skipped when the shared data directory is absent)."""

from __future__ import annotations

import json

import pytest

from rnnlab.data.registry import corpus_path
from rnnlab.errors import RnnlabError
from rnnlab.tasks.classify.config import ClassifyDataConfig
from rnnlab.tasks.classify.data import (
    carve,
    fold_assignment,
    load_classify_data,
    read_table,
    tokenize,
)


@pytest.mark.parametrize(("text", "tokens"), [
    ("A gripping, funny film!", ["a", "gripping", ",", "funny", "film", "!"]),
    ("It's great; don't miss it", ["it", "'s", "great", ";", "do", "n't", "miss", "it"]),
    ("does n't work", ["does", "n't", "work"]),  # SST is tokenized already: kept as is
    ("café -- 10", ["café", "-", "-", "10"]),
])
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_tokenize_keeps_case_when_asked():
    assert tokenize("Good Film", lowercase=False) == ["Good", "Film"]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_csv_and_jsonl_read_alike(tmp_path):
    tsv = _write(tmp_path, "a.tsv", "text\tlabel\ngood film\tpos\nbad film\tneg\n")
    csv = _write(tmp_path, "a.csv", 'label,text\npos,"good film"\nneg,bad film\n')
    jsonl = _write(tmp_path, "a.jsonl", '{"text": "good film", "label": "pos"}\n\n'
                                        '{"text": "bad film", "label": "neg"}\n')
    read = [[(e.tokens, e.label) for e in read_table(p, None, "label", "text", True)]
            for p in (tsv, csv, jsonl)]
    assert read[0] == read[1] == read[2] == [(["good", "film"], "pos"), (["bad", "film"], "neg")]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.tsv", "sentence\tlabel\nfine\tpos\n", r"a\.tsv:1: no column 'text'.*sentence, label"),
    ("a.tsv", "text\tlabel\nfine\tpos\n  \tneg\n", r"a\.tsv:3: empty text"),
    ("a.tsv", "text\tlabel\nfine\tpos\nfine\t\n", r"a\.tsv:3: empty label"),
    ("a.csv", "text,label\nfine,pos\nfine,pos,extra\n", r"a\.csv:3: 3 fields, the header has 2"),
    ("a.jsonl", '{"text": "x", "label": "p"}\n{"text": "y"\n', r"a\.jsonl:2: not valid JSON"),
    ("a.jsonl", '{"text": "x", "label": "p"}\n{"text": "y"}\n', r"a\.jsonl:2: no key 'label'"),
    ("a.jsonl", '["x", "p"]\n', r"a\.jsonl:1: expected a JSON object"),
    ("a.xml", "<x/>", r"cannot tell the format"),
])
def test_bad_user_files_name_the_line(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(RnnlabError, match=message):
        read_table(path, None, "label", "text", True)


def test_unknown_dev_label_names_its_line(tmp_path):
    train = _write(tmp_path, "train.tsv", "label\ttext\n" + "pos\tgood\nneg\tbad\n" * 5)
    valid = _write(tmp_path, "dev.tsv", "label\ttext\npos\tgood\nmeh\tso so\n")
    data = load_classify_data(ClassifyDataConfig(train=str(train), valid=str(valid),
                                                 test=str(valid)))
    assert data.labels == ["neg", "pos"]
    with pytest.raises(RnnlabError, match=r"dev\.tsv:3: label 'meh' is not one of"):
        data.encode(data.valid, max_len=10)


def test_fold_assignment_is_a_seeded_balanced_partition():
    folds = fold_assignment(23, 5, seed=7)
    sizes = sorted(folds.count(k) for k in range(5))
    assert sizes == [4, 5, 5, 5, 4][::-1] or sizes == [4, 4, 5, 5, 5]
    assert folds == fold_assignment(23, 5, seed=7)
    assert folds != fold_assignment(23, 5, seed=8)


def test_carve_holds_out_a_seeded_share_in_file_order():
    examples = list(range(50))
    kept, held = carve(examples, 0.2, seed=3)
    assert len(held) == 10 and sorted(kept + held) == examples
    assert held == sorted(held) and carve(examples, 0.2, seed=3) == (kept, held)


@pytest.fixture()
def mr_dir(tmp_path, monkeypatch):
    """A fake MR with Latin-1 bytes (0xe9 = é, 0x85 = the Windows-1252 ellipsis byte)."""
    # a stand-in: its bytes are not the published ones, so the checksum check is switched off
    monkeypatch.setattr("rnnlab.data.registry.verify_files", lambda *args: 0)
    folder = tmp_path / "mr"
    folder.mkdir()
    pos = b"".join(b"caf\xe9 film number %d is great\n" % i for i in range(30))
    neg = b"".join(b"dull film number %d \x85 bad\n" % i for i in range(30))
    (folder / "rt-polarity.pos").write_bytes(pos)
    (folder / "rt-polarity.neg").write_bytes(neg)
    return tmp_path


def test_mr_folds_partition_the_corpus(mr_dir):
    tests = []
    for fold in range(3):
        data = load_classify_data(ClassifyDataConfig(corpus="mr", folds=3, fold=fold,
                                                     dev_fraction=0.1), str(mr_dir))
        assert len(data.train) + len(data.valid) + len(data.test) == 60
        assert "café" in {t for ex in data.train for t in ex.tokens}  # 0xe9 read as Latin-1
        tests.append({" ".join(ex.tokens) for ex in data.test})
        train = {" ".join(ex.tokens) for ex in data.train + data.valid}
        assert not train & tests[-1]
    assert set.union(*tests) == {" ".join(t) for t in
                                 [tokenize(f"café film number {i} is great") for i in range(30)]
                                 + [tokenize(f"dull film number {i} \x85 bad") for i in range(30)]}
    assert sum(len(t) for t in tests) == 60  # 0x85 is no line break: still 30 + 30 lines


def test_mr_fixed_split_and_bad_fold(mr_dir):
    data = load_classify_data(ClassifyDataConfig(corpus="mr"), str(mr_dir))
    assert (len(data.train), len(data.valid), len(data.test)) == (49, 5, 6)
    assert data.labels == ["negative", "positive"]
    with pytest.raises(RnnlabError, match="--fold must be in 0..2"):
        load_classify_data(ClassifyDataConfig(corpus="mr", folds=3, fold=3), str(mr_dir))


def test_sst_line_errors(tmp_path, monkeypatch):
    monkeypatch.setattr("rnnlab.data.registry.verify_files", lambda *args: 0)  # a stand-in sst2
    folder = tmp_path / "sst2"
    folder.mkdir()
    for name in ("train.txt", "dev.txt", "test.txt"):
        (folder / name).write_text("1 good film\n0 bad film\n")
    (folder / "dev.txt").write_text("1 good film\n7 what\n")
    with pytest.raises(RnnlabError, match=r"dev\.txt:2: expected 'label text' with a label 0-1"):
        load_classify_data(ClassifyDataConfig(corpus="sst2"), str(tmp_path))


def _real(name):
    """The data directory holding all of `name`'s files, or a skip that says which are
    missing (a folder alone is not enough)."""
    try:
        return corpus_path(name).parent
    except RnnlabError as err:
        pytest.skip(str(err))


def test_real_sst2_counts():
    _real("sst2")
    data = load_classify_data(ClassifyDataConfig(corpus="sst2"))
    assert (len(data.train), len(data.valid), len(data.test)) == (6920, 872, 1821)
    assert sum(ex.label == "positive" for ex in data.test) == 909


def test_real_mr_is_read_as_latin1_and_folded():
    _real("mr")
    data = load_classify_data(ClassifyDataConfig(corpus="mr", folds=10, fold=0))
    assert len(data.train) + len(data.valid) + len(data.test) == 10662
    assert len(data.test) in (1066, 1067)
    assert json.dumps(data.notes)  # printable
