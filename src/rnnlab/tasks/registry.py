"""Every task in one table: what the CLI, `eval`, ensembles and the server read to reach a task.

A `TaskSpec` names the task's parts by "module:attribute" and imports them only when asked, so
`rnnlab --help` does not import every model. Adding a task means writing `tasks/<name>/`
(config, data, model, train, predict, run), one `TaskSpec` below, and its tests; the CLI
picks up `rnnlab train <name>`, `rnnlab eval` and (with `cli=`) the task's own commands.

The parts every task has, with the signatures the generic code relies on:

- `config`: its frozen config dataclass, saved as config.json's "config" section, whose fields
  become `rnnlab train <name>` flags;
- `train`: `train(config, train_config, run_dir, *, data_dir, resume, show_progress) ->
  summary`, the sections' configs in `sections` order (an n-gram run takes its own two);
- `predictor`: the class that reads a run back, `Predictor(run_dir, device="auto")`, with
  `evaluate(split, data_dir)` (`load_predictor` returns one);
- `model` and `data`: its model builder and data loader (their signatures are the task's own);
- `ensemble` (optional): `Ensemble(run_dirs, device)`, the same interface as the predictor;
- `cli` (optional): a `rnnlab.cli` module with the task's own commands (`register(subparsers)`),
  extra `eval` flags (`add_eval_arguments(parser)`) and its own `run_eval(args)`;
- `presets` (optional): named settings for `--preset`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.training.run_dir import RunInfo, read_run_info

TRAIN_CONFIG = "rnnlab.training.config:TrainConfig"


def resolve(reference: str) -> Any:
    """The object a "package.module:attribute" reference names."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Section:
    """One section of config.json: its key, its dataclass and the title of its flag group."""

    key: str
    config: str  # "module:Class"
    title: str


@dataclass(frozen=True)
class TaskSpec:
    name: str
    noun: str  # what a run of it is called in messages: "a tagger"
    help: str  # one line in `rnnlab train --help`
    description: str  # the top of `rnnlab train <name> --help`
    config: str  # "module:Class": the task's config dataclass (config.json's "config")
    train: str  # "module:function": train_<name>(...) -> summary (see the module docstring)
    predictor: str  # "module:Class": a trained run read back, Predictor(run_dir, device)
    model: str  # "module:function|Class": builds the task's model
    data: str  # "module:function": loads the task's data
    ensemble: str | None = None  # "module:Class": several runs deciding together
    cli: str | None = None  # "rnnlab.cli.<module>": the task's own commands and eval hooks
    presets: str | None = None  # "module:DICT" of named settings for --preset
    # config.json sections in the order `train` takes them; the default is the task's config
    # and the shared TrainConfig
    sections: tuple[Section, ...] = ()
    # flags naming a user's own files: giving one switches the default corpus off
    own_files: tuple[str, ...] = ()

    def config_sections(self) -> tuple[Section, ...]:
        return self.sections or (Section("config", self.config, "model and data"),
                                 Section("train", TRAIN_CONFIG, "training"))

    def section_classes(self) -> dict[str, type]:
        return {s.key: resolve(s.config) for s in self.config_sections()}

    def config_class(self) -> type:
        return resolve(self.config)

    def preset_table(self) -> dict[str, dict[str, Any]]:
        return resolve(self.presets) if self.presets else {}

    def cli_module(self) -> Any:
        return importlib.import_module(self.cli) if self.cli else None


_LM = "rnnlab.tasks.lm"
TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    TaskSpec(
        name="lm", noun="language model",
        help="recurrent language model (char, word or subword)",
        description="Train a recurrent language model on a named corpus (--corpus) or your own "
                    "text (--train FILE).",
        config=f"{_LM}.config:LMConfig", train=f"{_LM}.train:train_lm",
        predictor=f"{_LM}.run:LMRun", model=f"{_LM}.model:LanguageModel",
        data="rnnlab.data.lm_corpus:load_lm_corpus", cli="rnnlab.cli.lm",
        presets=f"{_LM}.presets:PRESETS",
    ),
    TaskSpec(
        name="ngram", noun="n-gram model",
        help="n-gram language model (add-k or Kneser-Ney)",
        description="Count an n-gram model in one pass; `sample`, `score` and `eval` read it "
                    "like a neural language model.",
        config="rnnlab.data.lm_corpus:LMDataConfig", train="rnnlab.tasks.ngram.train:train_ngram",
        predictor=f"{_LM}.run:LMRun", model="rnnlab.tasks.ngram:NGramModel",
        data="rnnlab.data.lm_corpus:load_lm_corpus", cli="rnnlab.cli.lm",
        sections=(Section("config", "rnnlab.data.lm_corpus:LMDataConfig", "data"),
                  Section("ngram", "rnnlab.tasks.ngram:NGramConfig", "n-gram")),
    ),
    TaskSpec(
        name="classify", noun="classifier",
        help="sentence classifier: recurrent + pooling, or TextCNN",
        description="Named corpora: sst2, sst5, mr (use --folds 10 for cross-validation), "
                    "or your own --train TSV/CSV/JSONL file.",
        config="rnnlab.tasks.classify.config:ClassifyConfig",
        train="rnnlab.tasks.classify.train:train_classify",
        predictor="rnnlab.tasks.classify.run:ClassifyRun",
        ensemble="rnnlab.tasks.classify.run:ClassifyEnsemble",
        model="rnnlab.tasks.classify.model:build_model",
        data="rnnlab.tasks.classify.data:load_classify_data", cli="rnnlab.cli.classify",
    ),
    TaskSpec(
        name="tag", noun="tagger",
        help="BiLSTM(-CRF) tagger with character features",
        description="E.g. --corpus ud-english-ewt --field upos, or --corpus "
                    "conll2003 --crf --char-features lstm --scheme bio.",
        config="rnnlab.tasks.tag.config:TagConfig", train="rnnlab.tasks.tag.train:train_tag",
        predictor="rnnlab.tasks.tag.run:TagRun", ensemble="rnnlab.tasks.tag.run:TagEnsemble",
        model="rnnlab.tasks.tag.model:build_model", data="rnnlab.tasks.tag.data:load_tag_data",
        cli="rnnlab.cli.tag",
    ),
    TaskSpec(
        name="translate", noun="translation model",
        help="encoder-decoder translation with attention (Multi30k de->en)",
        description="E.g. --corpus multi30k --attention bahdanau, or --attention general "
                    "--input-feeding, or your own files: --src-train a.de --tgt-train a.en "
                    "--src-valid b.de --tgt-valid b.en.",
        config="rnnlab.tasks.translate.config:TranslateConfig",
        train="rnnlab.tasks.translate.train:train_translate",
        predictor="rnnlab.tasks.translate.run:TranslateRun",
        model="rnnlab.tasks.translate.model:Seq2Seq",
        data="rnnlab.tasks.translate.data:load_parallel", cli="rnnlab.cli.translate",
        own_files=("src_train", "tgt_train"),
    ),
)}


def last_split(data: Any) -> str:
    """The split `eval` uses when none is named: the last one the data has (test, else valid;
    tinyshakespeare, for one, has no test split)."""
    return "test" if getattr(data, "test", None) is not None else "valid"


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise RnnlabError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def load_run(run_dir: str | Path, task: str | tuple[str, ...] | None = None) -> RunInfo:
    """A run folder's config.json read back with its task's config classes (strict: a setting
    this version does not know is a one-line error naming the version that wrote it).
    `task` names the task(s) the caller can read; the run's own task must be one of them."""
    found = run_task(run_dir, task)
    return read_run_info(run_dir, get_task(found).section_classes(), task=found)


def run_task(run_dir: str | Path, task: str | tuple[str, ...] | None = None) -> str:
    """The name of the task a run folder holds (checked against `task` when given)."""
    return read_run_info(run_dir, {}, task=task).task


def load_predictor(run_dir: str | Path, device: str = "auto") -> Any:
    """The trained run of any task, ready to predict and evaluate (LMRun, ClassifyRun, ...)."""
    info = load_run(run_dir)
    return resolve(get_task(info.task).predictor)(run_dir, device)
