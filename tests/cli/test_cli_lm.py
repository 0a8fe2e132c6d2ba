"""Every language-model command as a user runs it (`--max-steps 2` smoke runs), and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rnnlab import __version__
from rnnlab.cli.main import main

TEXT = "\n".join(f"line {i} says hello to the little world of rnnlab" for i in range(300)) + "\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, corpus):
    run = tmp_path_factory.mktemp("runs") / "char"
    code = main(["train", "lm", "--train", str(corpus), "--level", "char", "--hidden", "16",
                 "--layers", "1", "--batch-size", "4", "--bptt", "16", "--max-steps", "2",
                 "--run-dir", str(run), "--quiet"])
    assert code == 0
    return run


def test_version_and_info(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "device (--device auto)" in out and "tinyshakespeare" in out


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "rnnlab.cli.main", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"rnnlab {__version__}"


def test_sample_streams_text(run_dir, capsys):
    assert main(["sample", str(run_dir), "--prime", "line", "--length", "40", "--seed", "1",
                 "--temperature", "0.8", "--top-k", "5"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("line") and len(first) >= 40
    main(["sample", str(run_dir), "--prime", "line", "--length", "40", "--seed", "1",
          "--temperature", "0.8", "--top-k", "5"])
    assert capsys.readouterr().out == first  # seeded: reproducible


def test_sample_text_is_the_same_with_and_without_the_compiled_loop(run_dir, capsys,
                                                                     monkeypatch):
    """Without top-k/top-p `rnnlab sample` runs the token loop in C++ where it is built
    (tasks/lm/compiled_sampling.py); a seed gives the text of the Python loop."""
    from rnnlab.nn import native
    from rnnlab.tasks.lm import compiled_sampling

    argv = ["sample", str(run_dir), "--prime", "line", "--length", "80", "--seed", "3"]
    calls = []
    real = compiled_sampling.CompiledSampler.sample

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(compiled_sampling.CompiledSampler, "sample", counted)
    assert main(argv) == 0
    compiled = capsys.readouterr().out
    assert calls == ([1] if native.available() else [])
    with native.use_native(False):
        assert main(argv) == 0
    assert capsys.readouterr().out == compiled


def test_word_level_sample_separates_the_prime_from_the_first_word(tmp_path, corpus, capsys):
    run = tmp_path / "word"
    assert main(["train", "lm", "--train", str(corpus), "--level", "word", "--hidden", "8",
                 "--layers", "1", "--batch-size", "4", "--bptt", "8", "--max-steps", "2",
                 "--run-dir", str(run), "--quiet"]) == 0
    capsys.readouterr()
    for prime in ("line", "line 3 says"):
        assert main(["sample", str(run), "--prime", prime, "--length", "12", "--seed", "2"]) == 0
        out = capsys.readouterr().out
        words = out.split()
        vocabulary = set(TEXT.split()) | {"<unk>"}
        assert words[: len(prime.split())] == prime.split()
        assert all(word in vocabulary for word in words), out  # no two words glued together


def test_score_and_eval(run_dir, capsys):
    assert main(["score", str(run_dir), "--text", "hello world", "--format", "json",
                 "--verbose"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["tokens"] == len("hello world") and record["log_prob"] < 0
    assert len(record["token_log_probs"]) == record["tokens"]
    assert main(["eval", str(run_dir), "--split", "valid", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ppl"] > 1 and "bpc" in result and result["signature"].startswith("ppl|")


def test_resume_continues_to_total_steps(run_dir, capsys):
    assert main(["train", "lm", "--run-dir", str(run_dir), "--resume", "--max-steps", "4",
                 "--quiet", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 4


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "lm", "--corpus", "no-such-corpus"], "unknown corpus"),
        (["train", "lm", "--train", "/no/such/file.txt"], "not found|does not exist"),
        (["sample", "/no/such/run"], "does not exist"),
        (["train", "lm", "--preset", "nope"], "unknown preset"),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, argv, message):
    code = main([*argv, "--run-dir", str(tmp_path / "r")] if argv[0] == "train" else argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("rnnlab: error:") and len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err


def test_non_utf8_file_names_the_offset(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello\nwor\xffld\n" * 50)
    assert main(["train", "lm", "--train", str(bad), "--run-dir", str(tmp_path / "r")]) == 2
    assert "offset 9" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_transformer_lm_trains_samples_scores_evaluates_and_resumes(tmp_path, corpus, capsys):
    run = tmp_path / "gpt"
    assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--model",
                 "transformer", "--hidden", "16", "--heads", "2", "--layers", "1",
                 "--block-size", "16", "--batch-size", "4", "--eval-windows", "2",
                 "--max-steps", "2", "--run-dir", str(run), "--quiet", "--format",
                 "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and "window_loss" in summary["final"]
    assert main(["sample", str(run), "--prime", "line", "--length", "40", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out) >= 44  # past the 16-token context: cropped, not broken
    long_text = "line 7 says hello to the little world"  # longer than the context
    assert main(["score", str(run), "--text", long_text, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == len(long_text)
    assert main(["eval", str(run), "--split", "valid", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] > 0
    assert main(["train", "lm", "--run-dir", str(run), "--resume", "--max-steps", "3",
                 "--quiet", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3


def test_transformer_width_must_split_into_heads(tmp_path, corpus, capsys):
    assert main(["train", "lm", "--train", str(corpus), "--model", "transformer", "--hidden",
                 "10", "--heads", "4", "--max-steps", "1", "--run-dir",
                 str(tmp_path / "bad"), "--quiet"]) == 2
    assert "divisible" in capsys.readouterr().err
