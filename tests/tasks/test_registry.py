"""The task registry and `load_run`: every entry resolves, the config.json round-trip is strict
with a one-line message for runs of another version, and any run loads through one call."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from pathlib import Path

import pytest

import rnnlab
from rnnlab.errors import RnnlabError
from rnnlab.tasks.lm.config import LMDataConfig
from rnnlab.tasks.lm.run import LMRun
from rnnlab.tasks.ngram import NGramConfig
from rnnlab.tasks.ngram.train import train_ngram
from rnnlab.tasks.registry import TASKS, get_task, load_predictor, load_run, resolve

TEXT = "the cat sat on the mat\nthe dog sat on the log\n" * 40


@pytest.mark.parametrize("name", list(TASKS))
def test_every_entry_resolves(name):
    spec = TASKS[name]
    for reference in (spec.config, spec.train, spec.predictor, spec.model, spec.data,
                      *filter(None, (spec.ensemble, spec.presets))):
        assert resolve(reference) is not None, reference
    for cls in spec.section_classes().values():
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    train = inspect.signature(resolve(spec.train)).parameters
    assert {"data_dir", "resume", "show_progress"} <= set(train)
    assert spec.cli is None or hasattr(spec.cli_module(), "register")


def test_unknown_task_names_the_known_ones():
    with pytest.raises(RnnlabError, match="unknown task 'nope'; known: lm, ngram"):
        get_task("nope")


@pytest.fixture
def ngram_run(tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT)
    run = tmp_path / "run"
    train_ngram(LMDataConfig(train=str(corpus), level="word"), NGramConfig(order=2), run)
    return run


def test_load_run_builds_each_section(ngram_run):
    saved = load_run(ngram_run)
    assert saved.task == "ngram" and saved.version == rnnlab.__version__
    assert isinstance(saved.config, LMDataConfig) and saved.config.level == "word"
    assert saved.sections["ngram"] == NGramConfig(order=2) and saved.train is None
    assert saved.extra["tokenizer"]["name"] == "word"
    assert isinstance(load_predictor(ngram_run, "cpu"), LMRun)


def _edit(run: Path, change) -> None:
    path = run / "config.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_a_setting_this_version_lacks_is_one_clear_line(ngram_run):
    def add(record):
        record["rnnlab"] = "9.9"
        record["ngram"]["backoff_kind"] = "stupid"

    _edit(ngram_run, add)
    with pytest.raises(RnnlabError) as error:
        load_run(ngram_run)
    message = str(error.value)
    assert "written by rnnlab 9.9" in message and "backoff_kind" in message
    assert "\n" not in message


def test_a_missing_setting_takes_its_default(ngram_run):
    _edit(ngram_run, lambda record: record["config"].pop("encoding"))
    assert load_run(ngram_run).config.encoding == "utf-8"


def test_wrong_task_and_not_a_run(ngram_run, tmp_path):
    with pytest.raises(RnnlabError, match="holds a 'ngram' run, not a 'tag' run"):
        load_run(ngram_run, task="tag")
    with pytest.raises(RnnlabError, match="not a run directory"):
        load_run(tmp_path)
    with pytest.raises(RnnlabError, match="does not exist"):
        load_run(tmp_path / "nowhere")


def test_training_never_imports_plots():
    """Dependencies point one way: the task layer draws curves from what training logged."""
    training = Path(rnnlab.__file__).parent / "training"
    for path in training.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "rnnlab.plots", path
            elif isinstance(node, ast.Import):
                assert all(alias.name != "rnnlab.plots" for alias in node.names), path
