"""What a new user sees: `eval` on a corpus without a test split, `sample` from a word model
without a prime, the training summary (final metrics, files written), uniform permissions in a
run folder, the progress bar's end, labelled `score` columns, CoNLL output of `tag`."""

from __future__ import annotations

import io
import json
import stat
import time

import pytest

from rnnlab.cli.main import main
from rnnlab.training.config import TrainConfig
from rnnlab.training.trainer import Progress, Trainer

TEXT = "\n".join(f"line {i} says hello to the little world" for i in range(200)) + "\n"


@pytest.fixture(scope="module")
def word_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    corpus = folder / "train.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run = folder / "word"
    assert main(["train", "lm", "--train", str(corpus), "--level", "word", "--hidden", "8",
                 "--layers", "1", "--batch-size", "4", "--bptt", "8", "--max-steps", "2",
                 "--eval-every", "2", "--threads", "1", "--run-dir", str(run), "--quiet",
                 "--format", "json"]) == 0
    return run


def test_summary_shows_final_metrics_and_files(tmp_path, capsys):
    corpus = tmp_path / "train.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    # the budget ends exactly on an evaluation step: that evaluation is the final one
    assert main(["train", "lm", "--train", str(corpus), "--hidden", "8", "--layers", "1",
                 "--batch-size", "4", "--bptt", "8", "--max-steps", "2", "--eval-every", "2",
                 "--threads", "1", "--run-dir", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    final = next(line for line in out.splitlines() if line.startswith("final:"))
    assert "loss" in final and "ppl" in final and "{}" not in final
    files = next(line for line in out.splitlines() if line.startswith("files:"))
    for name in ("config.json", "model.safetensors", "vocab.json", "log.jsonl", "loss.png",
                 "checkpoints/step-00000002/"):
        assert name in files, files


def test_run_folder_files_share_permissions(word_run):
    modes = {path.relative_to(word_run): stat.S_IMODE(path.stat().st_mode)
             for path in word_run.rglob("*") if path.is_file()}
    assert len(set(modes.values())) == 1, modes
    folders = {stat.S_IMODE(p.stat().st_mode) for p in word_run.rglob("*") if p.is_dir()}
    assert len(folders) == 1, folders


def test_eval_defaults_to_the_last_split_and_says_which(word_run, capsys):
    assert main(["eval", str(word_run), "--format", "json"]) == 0  # own file: no test split
    captured = capsys.readouterr()
    assert json.loads(captured.out)["split"] == "valid"
    assert "evaluated on valid, the last split" in captured.err


def test_word_sample_without_prime_starts_at_a_sentence_start(word_run, monkeypatch, capsys):
    import rnnlab.decoding.sampling as sampling
    from rnnlab.tasks.lm import compiled_sampling
    from rnnlab.tasks.lm.run import LMRun

    seen = {}
    real, real_compiled = sampling.sample, compiled_sampling.CompiledSampler.sample

    def spy(step, prime_ids, *args, **kwargs):  # the Python loop's and the compiled one's
        seen["prime"] = list(prime_ids)
        if isinstance(step, compiled_sampling.CompiledSampler):
            return real_compiled(step, prime_ids, *args, **kwargs)
        return real(step, prime_ids, *args, **kwargs)

    monkeypatch.setattr(sampling, "sample", spy)
    monkeypatch.setattr(compiled_sampling.CompiledSampler, "sample", spy)
    assert main(["sample", str(word_run), "--length", "5", "--seed", "1"]) == 0
    assert seen["prime"] == [LMRun(word_run, "cpu").vocab.eos_id]
    assert len(capsys.readouterr().out.split()) >= 1


def test_score_text_labels_its_columns(word_run, capsys):
    assert main(["score", str(word_run), "--text", "line 3 says hello"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split("\t") == ["log_prob", "perplexity", "text"]
    assert row.split("\t")[2] == "line 3 says hello" and float(row.split("\t")[0]) < 0


class _Task:
    metric, higher_is_better = "loss", False


@pytest.mark.parametrize(
    ("settings", "step", "in_epoch", "expected"),
    [
        (dict(max_steps=50), 10, 10, 50),  # --max-steps
        (dict(epochs=3), 10, 10, 3 * 40),  # --epochs: 40 batches an epoch
        (dict(epochs=3, max_steps=100), 10, 10, 100),  # the nearer end wins
    ],
)
def test_progress_bar_knows_the_end(settings, step, in_epoch, expected):
    trainer = Trainer.__new__(Trainer)
    trainer.config, trainer.task = TrainConfig(**settings), _Task()
    trainer.progress = Progress(step=step, batch_in_epoch=in_epoch)
    trainer._first_step = 0
    assert trainer._expected_steps(40, time.monotonic()) == expected


def test_progress_bar_estimates_the_end_of_a_time_budget():
    trainer = Trainer.__new__(Trainer)
    trainer.config, trainer.task = TrainConfig(minutes=1.0, epochs=1000), _Task()
    trainer.progress = Progress(step=30, batch_in_epoch=30)
    trainer._first_step = 0
    # 30 steps in 15 s of a 60 s budget: 2 steps a second, so about 120 steps in all
    assert trainer._expected_steps(10**6, time.monotonic() - 15.0) == pytest.approx(120, abs=2)


def test_tag_writes_conll(tmp_path, capsys, monkeypatch):
    train = tmp_path / "train.txt"
    train.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n\n", encoding="utf-8")
    run = tmp_path / "ner"
    assert main(["train", "tag", "--train", str(train), "--valid", str(train), "--hidden", "4",
                 "--word-embedding-size", "4", "--char-hidden", "2", "--max-steps", "1",
                 "--threads", "1", "--run-dir", str(run), "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("EU rejects\nPeter Blackburn\n"))
    assert main(["tag", str(run), "--format", "conll"]) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    first = [line.split(" ") for line in blocks[0].splitlines()]
    assert [word for word, _ in first] == ["EU", "rejects"]
    assert len(blocks[1].splitlines()) == 2


def test_config_file_is_read_strictly(word_run, tmp_path, capsys):
    """--config takes a saved config.json of the same task; another task's is refused."""
    ngram = tmp_path / "ngram"
    corpus = tmp_path / "t.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    assert main(["train", "ngram", "--train", str(corpus), "--run-dir", str(ngram)]) == 0
    capsys.readouterr()
    assert main(["train", "lm", "--config", str(ngram / "config.json"),
                 "--run-dir", str(tmp_path / "x")]) == 2
    assert "holds a 'ngram' run, not a 'lm' run" in capsys.readouterr().err
    assert main(["train", "lm", "--config", str(word_run / "config.json"), "--max-steps", "1",
                 "--threads", "1", "--run-dir", str(tmp_path / "again"), "--quiet",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 1
