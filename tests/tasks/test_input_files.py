"""Users' input files: quoting, BOMs, header-only files, one-column CoNLL, all-O tags and
too-small n-gram eval splits are read correctly or refused with one clear error."""

from __future__ import annotations

import csv

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.tasks.classify.data import read_table
from rnnlab.tasks.lm.config import LMDataConfig
from rnnlab.tasks.ngram import NGramConfig
from rnnlab.tasks.ngram.train import train_ngram
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.data import load_tag_data, read_columns, read_conllu


def test_tsv_reads_quotes_as_characters(tmp_path):
    """An unbalanced quote used to swallow the rest of the file (300 rows -> 11)."""
    rows = [f'pos\tthe "best film {i}' if i == 3 else f"neg\tplain row {i}" for i in range(300)]
    path = tmp_path / "data.tsv"
    path.write_text("label\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8")
    examples = read_table(path, None, "label", "text", lowercase=False)
    assert len(examples) == 300
    assert examples[3].label == "pos" and examples[4].label == "neg"
    assert examples[4].tokens[-1] == "4"


def test_csv_keeps_quoting_rules(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('label,text\npos,"a, quoted ""text"""\nneg,plain\n', encoding="utf-8")
    examples = read_table(path, None, "label", "text", lowercase=False)
    assert [e.label for e in examples] == ["pos", "neg"]
    assert "quoted" in examples[0].tokens


def test_field_over_the_csv_limit_is_a_clear_error(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('label,text\npos,"' + "x" * (csv.field_size_limit() + 10) + '"\n')
    with pytest.raises(RnnlabError, match=r"data.csv:\d+: cannot read this CSV row"):
        read_table(path, None, "label", "text", lowercase=False)


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl"])
def test_header_only_file_is_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    header = {".tsv": "label\ttext\n", ".csv": "label,text\n", ".jsonl": "\n\n"}[suffix]
    path.write_text(header)
    with pytest.raises(RnnlabError, match="no examples"):
        read_table(path, None, "label", "text", lowercase=False)


@pytest.mark.parametrize("suffix,body", [
    (".tsv", "label\ttext\npos\tgood\n"),
    (".csv", "label,text\npos,good\n"),
    (".jsonl", '{"label": "pos", "text": "good"}\n'),
])
def test_bom_is_stripped_from_tables(tmp_path, suffix, body):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    [example] = read_table(path, None, "label", "text", lowercase=False)
    assert example.label == "pos" and example.tokens == ["good"]


def test_bom_is_stripped_from_conll_files(tmp_path):
    columns = tmp_path / "a.conll"
    columns.write_bytes(b"\xef\xbb\xbfParis\tB-LOC\nis\tO\n")
    assert read_columns(columns)[0].words == ["Paris", "is"]
    conllu_file = tmp_path / "a.conllu"
    conllu_file.write_bytes(b"\xef\xbb\xbf1\tParis\tparis\tPROPN\t_\t_\t0\troot\t_\t_\n\n")
    assert read_conllu(conllu_file)[0].words == ["Paris"]


def test_one_column_conll_is_refused(tmp_path):
    path = tmp_path / "words.conll"
    path.write_text("Paris\nis\n\nnice\n")
    with pytest.raises(RnnlabError, match="same column"):
        read_columns(path)


def test_all_o_tags_are_refused_at_load(tmp_path):
    train, valid = tmp_path / "train.conll", tmp_path / "valid.conll"
    for path in (train, valid):
        path.write_text("Paris\tO\nis\tO\n\nnice\tO\n")
    config = TagConfig(corpus=None, train=str(train), valid=str(valid))
    with pytest.raises(RnnlabError, match="every tag is O"):
        load_tag_data(config)
    plain = load_tag_data(TagConfig(corpus=None, train=str(train), valid=str(valid),
                                    scheme="none"))  # plain labels are fine
    assert plain.scheme == "none"


def test_ngram_refuses_a_too_small_valid_split(tmp_path):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("the cat sat on the mat\n" * 20)
    valid.write_text("the\n")
    data = LMDataConfig(corpus=None, train=str(train), valid=str(valid), level="word")
    with pytest.raises(RnnlabError, match="valid split has"):
        train_ngram(data, NGramConfig(order=2), tmp_path / "run")
