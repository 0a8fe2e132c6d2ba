"""Document classification as a user runs it, on a generated IMDB archive (`--max-steps 2`):
HAN train / eval / predict --explain / ensemble / resume, and the baselines on the same split."""

from __future__ import annotations

import io
import json
import random
import tarfile

import pytest

from rnnlab.cli.main import main

GOOD = ["A great film.", "I loved the cast!", "Superb acting, really."]
BAD = ["An awful film.", "I hated the plot!", "Dreadful acting, really."]
SMALL = ["--embedding-size", "8", "--hidden", "6", "--batch-size", "8", "--max-steps", "2",
         "--threads", "1", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("data")
    (root / "aclimdb").mkdir()
    with tarfile.open(root / "aclimdb" / "aclImdb_v1.tar.gz", "w:gz") as tf:
        def add(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        for split, count in (("train", 24), ("test", 6)):
            for label, pool in (("pos", GOOD), ("neg", BAD)):
                for number in range(count):
                    add(f"aclImdb/{split}/{label}/{number}_{8 if label == 'pos' else 2}.txt",
                        "<br /><br />".join(rng.sample(pool, 2)))
                add(f"aclImdb/{split}/urls_{label}.txt", "\n".join(
                    f"http://www.imdb.com/title/tt{split}{n % 12}/usercomments"
                    for n in range(count)))
    return root


def train(data_dir, run, *flags: str) -> dict:
    code = main(["train", "classify", "--corpus", "aclimdb", "--data-dir", str(data_dir),
                 *SMALL, "--run-dir", str(run), "--format", "json", *flags])
    assert code == 0
    return run


@pytest.fixture(scope="module")
def han_run(data_dir, tmp_path_factory):
    return train(data_dir, tmp_path_factory.mktemp("runs") / "han", "--model", "han",
                 "--cell", "gru")


def test_han_trains_without_touching_test(han_run):
    results = json.loads((han_run / "results.json").read_text())
    assert "test" not in results and 0 <= results["valid"]["accuracy"] <= 1
    config = json.loads((han_run / "config.json").read_text())
    assert any("training movies" in note for note in config.get("data_notes", [])) or \
        config["config"]["dev_fraction"] == 0.1


def test_eval_test_split_only_on_request(han_run, data_dir, capsys):
    capsys.readouterr()
    assert main(["eval", str(han_run), "--split", "test", "--data-dir", str(data_dir),
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "test" and result["sentences"] == 12


def test_predict_explain_both_levels(han_run, tmp_path, capsys):
    review = tmp_path / "review.txt"
    review.write_text("A great film. I loved the cast!<br /><br />An awful plot.\n",
                      encoding="utf-8")
    html, png = tmp_path / "doc.html", tmp_path / "doc.png"
    capsys.readouterr()
    assert main(["predict", str(han_run), "--file", str(review), "--explain",
                 "--explain-html", str(html), "--explain-png", str(png)]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert lines[0].split()[0] in ("positive", "negative")
    assert len(lines) == 4  # the label line, then one line per sentence
    weights = [float(line.split()[0]) for line in lines[1:]]
    assert sum(weights) == pytest.approx(1.0, abs=2e-3)
    assert lines[1].split()[1].startswith("a(")  # each word with its weight
    page = html.read_text()
    assert page.count('class="sentence"') == 3 and page.count("<span") == 13
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["predict", str(han_run), "--file", str(review), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sentences"] == [["a", "great", "film", "."], ["i", "loved", "the", "cast",
                                                                  "!"], ["an", "awful", "plot",
                                                                         "."]]
    assert sum(record["sentence_attention"]) == pytest.approx(1.0, abs=1e-5)
    assert all(sum(w) == pytest.approx(1.0, abs=1e-5) for w in record["word_attention"])


def test_ensemble_and_resume(han_run, data_dir, tmp_path, capsys):
    other = train(data_dir, tmp_path / "han2", "--model", "han", "--cell", "gru", "--seed", "2")
    capsys.readouterr()
    assert main(["eval", str(han_run), "--ensemble", str(other), "--split", "valid",
                 "--data-dir", str(data_dir), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["member_accuracy"]) == 2
    assert main(["predict", str(han_run), "A great film.", "--ensemble", str(other)]) == 0
    assert capsys.readouterr().out.split("\t")[0] in ("positive", "negative")
    assert main(["train", "classify", "--corpus", "aclimdb", "--data-dir", str(data_dir),
                 *SMALL[:6], "--max-steps", "4", "--threads", "1", "--quiet",
                 "--model", "han", "--cell", "gru", "--run-dir", str(other), "--resume"]) == 0
    steps = [json.loads(line) for line in (other / "log.jsonl").read_text().splitlines()]
    assert steps[-1]["kind"] == "end" and steps[-1]["steps"] == 4


@pytest.mark.parametrize("flags", [["--model", "rnn", "--max-len", "12"],
                                   ["--model", "cnn", "--filter-widths", "2,3",
                                    "--filter-maps", "4"],
                                   ["--model", "nbsvm", "--min-freq", "1"]])
def test_baselines_read_the_same_documents(data_dir, tmp_path, flags, capsys):
    run = train(data_dir, tmp_path / flags[1], *flags)
    results = json.loads((run / "results.json").read_text())
    assert "test" not in results
    capsys.readouterr()
    assert main(["predict", str(run), "A great film.<br />I loved it."]) == 0
    assert capsys.readouterr().out.split("\t")[0] in ("positive", "negative")


def test_user_documents_for_han(tmp_path, capsys):
    path = tmp_path / "my.jsonl"
    rows = [{"text": " ".join(random.Random(i).sample(GOOD if i % 2 else BAD, 2)),
             "label": "pos" if i % 2 else "neg"} for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["train", "classify", "--train", str(path), "--text-column", "text",
                 "--label-column", "label", "--model", "han", *SMALL,
                 "--run-dir", str(tmp_path / "run")]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "pos"}\n{"body": "x"}\n', encoding="utf-8")
    code = main(["train", "classify", "--train", str(bad), "--model", "han", *SMALL,
                 "--run-dir", str(tmp_path / "bad")])
    assert code == 2
    assert "bad.jsonl:2: no key 'label'" in capsys.readouterr().err
