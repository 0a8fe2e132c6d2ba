"""`rnnlab train tag`, `rnnlab tag` and `rnnlab eval` on a tagging run (`--max-steps 2` smoke
runs), their output formats, and one-line errors for bad input."""

from __future__ import annotations

import io
import json

import pytest

from rnnlab.cli.main import main

TRAIN = """-DOCSTART- -X- O O

EU NNP I-ORG
rejects VBZ O
German JJ I-MISC
call NN O

Peter NNP I-PER
Blackburn NNP I-PER

BRUSSELS NNP I-LOC
1996-08-22 CD O
"""

CONLLU = """# sent_id = a
1\tI\tI\tPRON\tPRP\t_\t2\tnsubj\t_\t_
2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
2\tca\tcan\tAUX\tMD\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_

"""


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-tag")
    train = folder / "eng.train"
    train.write_text(TRAIN, encoding="utf-8")
    run = folder / "ner"
    code = main(["train", "tag", "--train", str(train), "--valid", str(train), "--test",
                 str(train), "--crf", "--char-features", "lstm", "--scheme", "bioes",
                 "--hidden", "8", "--word-embedding-size", "8", "--char-hidden", "4",
                 "--max-steps", "2", "--threads", "1", "--run-dir", str(run), "--quiet"])
    assert code == 0
    return run


def test_train_tag_conllu_softmax_cnn(tmp_path, capsys):
    path = tmp_path / "tiny.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    code = main(["train", "tag", "--train", str(path), "--valid", str(path), "--file-format",
                 "conllu", "--field", "xpos", "--char-features", "cnn", "--hidden", "8",
                 "--max-steps", "2", "--threads", "1", "--run-dir", str(tmp_path / "pos"),
                 "--quiet", "--format", "json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metric"] == "accuracy" and summary["steps"] == 2
    tags = json.loads((tmp_path / "pos" / "tags.json").read_text())
    assert tags == ["MD", "PRP", "RB", "VB"]  # the words of "can't", not the range line
    words = tmp_path / "words.txt"
    words.write_text("I ca n't go\n", encoding="utf-8")
    assert main(["tag", str(tmp_path / "pos"), "--file", str(words)]) == 0
    pairs = [p.rsplit("/", 1) for p in capsys.readouterr().out.split()]
    assert [w for w, _ in pairs] == ["I", "ca", "n't", "go"] and {t for _, t in pairs} <= set(tags)


def test_tag_text_json_and_conll(ner_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("Peter rejects EU\n\nGerman call\n"))
    assert main(["tag", str(ner_run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert [pair.rsplit("/", 1)[0] for pair in lines[0].split()] == ["Peter", "rejects", "EU"]
    tags = [pair.rsplit("/", 1)[1] for line in lines for pair in line.split()]
    assert all(t == "O" or t[:2] in ("B-", "I-") for t in tags)  # BIO out of a BIOES model

    text = tmp_path / "in.txt"
    text.write_text("BRUSSELS call\n", encoding="utf-8")
    assert main(["tag", str(ner_run), "--file", str(text), "--format", "json",
                 "--output-scheme", "bioes"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["words"] == ["BRUSSELS", "call"] and len(record["tags"]) == 2

    conll = tmp_path / "in.conll"
    conll.write_text(TRAIN, encoding="utf-8")
    assert main(["tag", str(ner_run), "--file", str(conll), "--conll"]) == 0
    out = capsys.readouterr().out
    blocks = [b.splitlines() for b in out.strip().split("\n\n")]
    assert [len(b) for b in blocks] == [4, 2, 2]  # -DOCSTART- is not a sentence
    assert blocks[1][0].startswith("Peter NNP I-PER ")  # input line + predicted column
    assert all(len(line.split()) == 4 for b in blocks for line in b)


def test_eval_prints_seqeval_report(ner_run, capsys):
    assert main(["eval", str(ner_run), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "f1:" in out and "accuracy:" in out and "micro avg" in out
    assert main(["eval", str(ner_run), "--split", "valid", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "valid" and result["tokens"] == 8
    assert result["signature"].startswith("f1|corpus:eng.train|split:valid")


def test_resume_continues_the_run(ner_run, capsys):
    assert main(["train", "tag", "--run-dir", str(ner_run), "--resume", "--max-steps", "3",
                 "--quiet", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3


def test_errors_are_one_line(ner_run, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.txt"
    bad.write_text("EU I-ORG\nrejects\n", encoding="utf-8")
    assert main(["train", "tag", "--train", str(bad), "--valid", str(bad),
                 "--run-dir", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.txt:2: 1 columns, expected 2" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n"))
    assert main(["tag", str(ner_run)]) == 2
    assert "nothing to tag" in capsys.readouterr().err
    assert main(["tag", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_ensemble_tags_and_evaluates_together(ner_run, tmp_path, capsys, monkeypatch):
    train = ner_run.parent / "eng.train"
    second, softmax = tmp_path / "second", tmp_path / "softmax"
    for run, extra in ((second, ["--crf", "--seed", "5", "--lowercase"]), (softmax, [])):
        assert main(["train", "tag", "--train", str(train), "--valid", str(train), "--test",
                     str(train), "--char-features", "lstm", "--scheme", "bioes", "--hidden",
                     "8", "--word-embedding-size", "8", "--char-hidden", "4", "--max-steps",
                     "2", "--threads", "1", "--run-dir", str(run), "--quiet", *extra]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("Peter rejects EU\n"))
    assert main(["tag", str(ner_run), "--ensemble", str(second), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["words"] == ["Peter", "rejects", "EU"] and len(record["tags"]) == 3

    assert main(["eval", str(ner_run), "--ensemble", str(second), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["members"] == [str(ner_run), str(second)] and len(result["member_f1"]) == 2
    assert "|ensemble:2|" in result["signature"] and 0 <= result["f1"] <= 1
    assert main(["eval", str(ner_run), "--ensemble", str(second)]) == 0
    out = capsys.readouterr().out
    assert f"member {second}: f1 " in out and "micro avg" in out

    assert main(["eval", str(ner_run), "--ensemble", str(softmax)]) == 2
    assert "differ in their output layer" in capsys.readouterr().err


def test_a_run_finds_relative_files_from_another_directory(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "eng.train").write_text(TRAIN, encoding="utf-8")
    monkeypatch.chdir(data)
    run = tmp_path / "run"
    assert main(["train", "tag", "--train", "eng.train", "--valid", "eng.train", "--crf",
                 "--hidden", "4", "--word-embedding-size", "4", "--char-hidden", "2",
                 "--max-steps", "1", "--threads", "1", "--run-dir", str(run), "--quiet"]) == 0
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["train"] == str(data / "eng.train") and saved["test"] is None
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "valid", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == 8


@pytest.mark.parametrize("crf", [False, True])
def test_transformer_tagger_trains_tags_and_evaluates(tmp_path, crf, capsys):
    train = tmp_path / "eng.train"
    train.write_text(TRAIN, encoding="utf-8")
    run = tmp_path / "ner-transformer"
    assert main(["train", "tag", "--train", str(train), "--valid", str(train), "--test",
                 str(train), "--model", "transformer", "--hidden", "8", "--heads", "2",
                 "--layers", "1", "--char-features", "cnn", "--word-embedding-size", "8",
                 "--char-hidden", "4", *(["--crf"] if crf else []), "--max-steps", "2",
                 "--threads", "1", "--run-dir", str(run), "--quiet"]) == 0
    capsys.readouterr()
    text = tmp_path / "text.txt"
    text.write_text("Peter met EU officials\n", encoding="utf-8")
    assert main(["tag", str(run), "--file", str(text), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().split("\n")[0])
    assert len(record["tags"]) == 4
    assert main(["eval", str(run), "--split", "test", "--format", "json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["f1"] <= 1
