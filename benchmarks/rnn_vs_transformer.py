"""Recurrent models vs the Transformer (vs ConvS2S for translation): same data, tokenization and
CPU budget per row, at one thread; one table and one PNG of the dev metric against minutes per
task.

Usage:
  python benchmarks/rnn_vs_transformer.py --task multi30k --minutes 90            # every row
  python benchmarks/rnn_vs_transformer.py --task multi30k --minutes 90 --rows transformer
  python benchmarks/rnn_vs_transformer.py --task tinyshakespeare --minutes 10   (and 30; also
      ptb --minutes 60, sst2, ud-english-ewt, conll2003)
Each row trains in its own run directory (runs/rnn-vs-transformer/<task>-<M>min/<row>), then the
best dev checkpoint is evaluated, and the row is merged into
benchmarks/results/rnn_vs_transformer_<task>_<M>min.{json,md} (one table per budget M); the
PNG is redrawn from every row in the JSON (docs/images/rnn_vs_transformer_<task>_<M>min.png).
Rows run one after another, never in parallel; each row records the load average before and
after it, so the table says which rows shared the machine with other work.

Adding a task: write a `Task` (its rows, how a row trains, how its best checkpoint is scored,
the table's columns) and register it in TASKS. Rows are dicts of config overrides, so a row is
one line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import RESULTS, save_record  # noqa: E402
from rnnlab.config import to_dict  # noqa: E402
from rnnlab.training.config import TrainConfig  # noqa: E402
from rnnlab.training.log import read_log  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"


@dataclass
class Task:
    """One task of the comparison: rows (config overrides), training, scoring, the table."""

    name: str
    title: str
    metric: str  # the dev metric logged at each evaluation (the PNG's y axis)
    rows: dict[str, dict[str, Any]]  # row -> {"model": {...}, "train": {...}}
    train: Callable[[str, dict[str, Any], float, Path, str | None], dict[str, Any]]
    columns: list[tuple[str, str]]  # (header, key in the row's record)
    notes: str


# -- Multi30k de->en -------------------------------------------------------------------------

TRANSLATE_DATA = dict(corpus="multi30k", min_freq=2, max_len=50, batch_size=128)
RNN = dict(model="rnn", cell="gru", embedding=256, hidden=256, layers=1, bidirectional=True,
           dropout=0.3)
RNN_TRAIN = dict(optimizer="adamw", lr=1e-3, clip=1.0)
TRANSLATE_ROWS: dict[str, dict[str, Any]] = {
    "lstm-luong": {"model": {**RNN, "cell": "lstm", "attention": "general"}, "train": RNN_TRAIN},
    "gru-luong": {"model": {**RNN, "attention": "general"}, "train": RNN_TRAIN},
    "gru-none": {"model": {**RNN, "attention": "none"}, "train": RNN_TRAIN},
    "gru-none-reversed": {"model": {**RNN, "attention": "none", "reverse_source": True},
                          "train": RNN_TRAIN},
    "gru-bahdanau": {"model": {**RNN, "attention": "bahdanau"}, "train": RNN_TRAIN},
    "gru-luong-feed": {"model": {**RNN, "attention": "general", "input_feeding": True},
                       "train": RNN_TRAIN},
    "conv": {"model": dict(model="conv", embedding=256, hidden=256, layers=4, kernel=3,
                           dropout=0.2, label_smoothing=0.1),
             "train": dict(optimizer="adamw", lr=1e-3, clip=1.0)},
    # Transformer: bentrevett's Multi30k recipe (d 256, 3 layers, 8 heads, FFN 512, dropout
    # 0.1, batch 128), with the paper's label smoothing 0.1, tied target embeddings, and the
    # inverse-sqrt schedule peaking at 1e-3 after 400 steps (fairseq's inverse_sqrt)
    "transformer": {"model": dict(model="transformer", hidden=256, layers=3, heads=8, ff=512,
                                  dropout=0.1, label_smoothing=0.1, tie_embeddings=True),
                    "train": dict(optimizer="adamw", lr=1e-3, clip=1.0, schedule="inverse-sqrt",
                                  warmup=400)},
}
BEAM, ALPHA = 5, 0.6
EVAL_EVERY = 400  # steps between dev evaluations (greedy BLEU on all 1,014 dev sentences)


def dev_curve(run_dir: Path, metric: str) -> list[dict[str, float]]:
    """Dev evaluations with the minutes since training started (a resumed run's pause left
    out): the points of the PNG."""
    points, spent, segment_start, last = [], 0.0, 0.0, 0.0
    for record in read_log(run_dir):
        if record["kind"] == "start":
            spent += last - segment_start
            segment_start = last = record["time"]
            continue
        last = record["time"]
        if record["kind"] == "eval":
            points.append({"minutes": round((spent + last - segment_start) / 60, 2),
                           "step": record["step"], metric: round(record[metric], 4)})
    return points


def training_tokens_per_second(run_dir: Path) -> int | None:
    """Mean of the logged training throughput (target tokens/s, evaluations excluded); None
    when the run stopped before its first log line."""
    rates = [r["items_per_second"] for r in read_log(run_dir) if r["kind"] == "train"]
    return round(sum(rates) / len(rates)) if rates else None


def train_translate_row(row: str, spec: dict[str, Any], minutes: float, run_dir: Path,
                        data_dir: str | None) -> dict[str, Any]:
    from rnnlab.tasks.translate.config import TranslateConfig
    from rnnlab.tasks.translate.run import TranslateRun
    from rnnlab.tasks.translate.train import train_translate

    config = TranslateConfig(**TRANSLATE_DATA, dev_metric="bleu", beam=BEAM, alpha=ALPHA,
                             **spec["model"])
    train = TrainConfig(**{"epochs": 1000, "minutes": minutes, "eval_every": EVAL_EVERY,
                           "log_every": 50, "seed": 1, "threads": 1, "device": "cpu",
                           **spec["train"]})
    started = time.perf_counter()
    summary = train_translate(config, train, run_dir, data_dir=data_dir, show_progress=False)
    train_minutes = (time.perf_counter() - started) / 60
    run = TranslateRun(run_dir, device="cpu")
    scores = {}
    for split in ("valid", "test"):
        result = run.evaluate(split, beam=BEAM, alpha=ALPHA, data_dir=data_dir)
        result.pop("hypotheses")
        scores[split] = result
    return {
        "config": to_dict(config), "train": to_dict(train), "parameters": summary["parameters"],
        "train_minutes": round(train_minutes, 2), "steps": summary["steps"],
        "epochs_completed": summary["epochs_completed"], "stop_reason": summary["stop_reason"],
        "dev_bleu": round(scores["valid"]["bleu"], 2),
        "test_bleu": round(scores["test"]["bleu"], 2),
        "test_chrf": round(scores["test"]["chrf"], 2),
        "train_tokens_per_second": training_tokens_per_second(run_dir),
        "test_sentences_per_second": round(scores["test"]["sentences_per_second"], 1),
        "dev_curve": dev_curve(run_dir, "bleu"),
        "bleu_signature": scores["test"]["bleu_signature"],
    }


MULTI30K = Task(
    name="multi30k", title="Multi30k de->en (test_2016_flickr)", metric="bleu",
    rows=TRANSLATE_ROWS, train=train_translate_row,
    columns=[("dev BLEU", "dev_bleu"), ("test BLEU", "test_bleu"), ("test chrF", "test_chrf"),
             ("parameters", "parameters"), ("train tok/s", "train_tokens_per_second"),
             ("test sent/s", "test_sentences_per_second"), ("minutes", "train_minutes"),
             ("steps", "steps"), ("load before/after", "load")],
    notes=(f"Lower-cased words (min freq 2), batches of 128 sentence pairs, AdamW, seed 1. "
           f"dev/test BLEU: sacrebleu on lower-cased detokenized output of the best dev "
           f"checkpoint (picked by greedy dev BLEU every {EVAL_EVERY} steps), beam {BEAM}, "
           f"GNMT length penalty {ALPHA}; test sent/s: beam {BEAM}, batches of 128. Recurrent "
           "rows: GRU/LSTM 256, bidirectional encoder, dropout 0.3, no label smoothing (the "
           "README rows' recipe). The minutes budget includes the dev evaluations."),
)

# -- Tiny Shakespeare (char LM), SST-2, UD English-EWT UPOS -------------------------------------
# Rows start from the tasks' own recipes; a row's budget replaces their step or epoch budgets.

LM_EVAL_EVERY = 250
LM_ROWS: dict[str, dict[str, Any]] = {
    "lstm": {"preset": "shakespeare-char", "model": {}, "train": {}},
    "gru": {"preset": "shakespeare-char", "model": {"cell": "gru"}, "train": {}},
    # nanoGPT's recipe (shakespeare-gpt) with a constant rate after the warm-up: its cosine is
    # defined over a step budget, the rows share a time budget
    "transformer": {"preset": "shakespeare-gpt", "model": {"eval_windows": 0},
                    "train": {"schedule": "constant", "max_steps": 0}},
}


def sampling_speed(run: Any, tokens: int = 500) -> float:
    """Tokens per second of `rnnlab sample` (one stream, the model's `step`)."""
    started = time.perf_counter()
    for _ in run.generate("", tokens, seed=1):
        pass
    return tokens / (time.perf_counter() - started)


def train_lm_row(row: str, spec: dict[str, Any], minutes: float, run_dir: Path,
                 data_dir: str | None) -> dict[str, Any]:
    from rnnlab.config import from_dict
    from rnnlab.tasks.lm.config import LMConfig
    from rnnlab.tasks.lm.presets import PRESETS
    from rnnlab.tasks.lm.run import LMRun
    from rnnlab.tasks.lm.train import train_lm

    values = {**PRESETS[spec["preset"]], **spec["model"], **spec["train"], "minutes": minutes,
              "epochs": 1000, "eval_every": LM_EVAL_EVERY, "seed": 1, "threads": 1,
              "device": "cpu"}
    config = from_dict(LMConfig, {k: v for k, v in values.items()
                                  if k in LMConfig.__dataclass_fields__})
    train = from_dict(TrainConfig, {k: v for k, v in values.items()
                                    if k in TrainConfig.__dataclass_fields__})
    summary = train_lm(config, train, run_dir, data_dir=data_dir, show_progress=False)
    run = LMRun(run_dir, device="cpu")
    valid = run.evaluate("valid", data_dir)
    record = {
        "config": to_dict(config), "train": to_dict(train), "parameters": summary["parameters"],
        "train_minutes": round(summary["seconds"] / 60, 2), "steps": summary["steps"],
        "dev_loss": round(valid["loss"], 4), "dev_ppl": round(valid["ppl"], 2),
        "train_tokens_per_second": training_tokens_per_second(run_dir),
        "sample_chars_per_second": round(sampling_speed(run), 1),
        "dev_curve": dev_curve(run_dir, "loss"), "signature": valid["signature"],
    }
    if "bpc" in valid:
        record["dev_bpc"] = round(valid["bpc"], 4)
    if config.corpus == "ptb":  # the one LM corpus here with a test split
        test = run.evaluate("test", data_dir)
        record.update(test_ppl=round(test["ppl"], 2), signature=test["signature"])
    return record


TINYSHAKESPEARE = Task(
    name="tinyshakespeare", title="Tiny Shakespeare, characters", metric="loss",
    rows=LM_ROWS, train=train_lm_row,
    columns=[("dev loss (nats/char)", "dev_loss"), ("dev bpc", "dev_bpc"),
             ("parameters", "parameters"), ("train tok/s", "train_tokens_per_second"),
             ("sample char/s", "sample_chars_per_second"), ("minutes", "train_minutes"),
             ("steps", "steps"), ("load before/after", "load")],
    notes=("Characters, nanoGPT's split (first 90% train, last 10% dev). Recurrent rows: the "
           "shakespeare-char preset (2 x 256, embeddings 64, dropout 0.2, AdamW 3e-3, windows "
           "of 64 carried state, batch 32); Transformer: shakespeare-gpt (nanoGPT's 4 x 128, "
           "4 heads, context 64, batch 12, AdamW 1e-3 after a 100-step warm-up). dev loss: the "
           "whole dev stream (the Transformer in windows of its context) of the best dev "
           f"checkpoint (every {LM_EVAL_EVERY} steps); sample char/s: 500 characters, one "
           "stream, through `step` (the Transformer's key/value cache)."),
)

PTB_ROWS: dict[str, dict[str, Any]] = {
    "lstm": {"preset": "ptb-small", "model": {}, "train": {}},
    "gru": {"preset": "ptb-small", "model": {"cell": "gru"}, "train": {}},
    # nanoGPT's block on PTB's words: 4 x 256, 4 heads, context 64, tied embeddings, dropout
    # 0.2 (PTB's 0.9M words overfit a dropout-free model), AdamW 1e-3 after 100 warm-up steps,
    # constant after it (the rows share a time budget, not a step budget); batch 20 as ptb-small
    "transformer": {"preset": "shakespeare-gpt",
                    "model": {"corpus": "ptb", "level": "word", "hidden": 256,
                              "dropout": 0.2, "dropout_embedding": 0.2, "dropout_output": 0.2,
                              "batch_size": 20, "eval_batch_size": 10, "eval_windows": 0},
                    "train": {"schedule": "constant", "max_steps": 0, "log_every": 200}},
}

PTB = Task(
    name="ptb", title="Penn Treebank, words", metric="loss",
    rows=PTB_ROWS, train=train_lm_row,
    columns=[("dev ppl", "dev_ppl"), ("test ppl", "test_ppl"), ("parameters", "parameters"),
             ("train tok/s", "train_tokens_per_second"),
             ("sample tok/s", "sample_chars_per_second"), ("minutes", "train_minutes"),
             ("steps", "steps"), ("load before/after", "load")],
    notes=("Mikolov's PTB (10k words). Recurrent rows: the ptb-small preset (Zaremba et al. "
           "2014's small model: 2 x 200, no dropout, SGD lr 35 x 0.5 a epoch from epoch 5, "
           "windows of 35 carried state, batch 20), LSTM and GRU; Transformer: a GPT of 4 x "
           "256, 4 heads, context 64, tied embeddings, dropout 0.2, AdamW 1e-3 after a 100-step "
           "warm-up. dev/test perplexity: the whole stream of the best dev checkpoint (every "
           f"{LM_EVAL_EVERY} steps); sample tok/s: 500 words, one stream, through `step`."),
)

CLASSIFY_DATA = dict(corpus="sst2")
CLASSIFY_ROWS: dict[str, dict[str, Any]] = {
    "lstm": {"model": {}, "train": {}},
    "gru": {"model": {"cell": "gru"}, "train": {}},
    "transformer": {"model": dict(model="transformer", hidden=256, heads=4, layers=2,
                                  dropout=0.1, pooling="mean"),
                    "train": dict(lr=5e-4, warmup=200, weight_decay=0.01)},
}


def train_classify_row(row: str, spec: dict[str, Any], minutes: float, run_dir: Path,
                       data_dir: str | None) -> dict[str, Any]:
    from rnnlab.tasks.classify.config import ClassifyConfig
    from rnnlab.tasks.classify.run import ClassifyRun
    from rnnlab.tasks.classify.train import train_classify

    config = ClassifyConfig(**CLASSIFY_DATA, **spec["model"])
    train = TrainConfig(**{"epochs": 1000, "minutes": minutes, "eval_every": 200, "seed": 1,
                           "threads": 1, "device": "cpu", "patience": 10, **spec["train"]})
    summary = train_classify(config, train, run_dir, data_dir=data_dir, show_progress=False)
    run = ClassifyRun(run_dir, device="cpu")
    valid = run.evaluate("valid", data_dir)
    started = time.perf_counter()
    test = run.evaluate("test", data_dir)
    seconds = time.perf_counter() - started
    return {
        "config": to_dict(config), "train": to_dict(train), "parameters": summary["parameters"],
        "train_minutes": round(summary["seconds"] / 60, 2), "steps": summary["steps"],
        "dev_accuracy": round(100 * valid["accuracy"], 2),
        "test_accuracy": round(100 * test["accuracy"], 2),
        "train_sentences_per_second": training_tokens_per_second(run_dir),
        "test_sentences_per_second": round(test["sentences"] / seconds, 1),
        "dev_curve": dev_curve(run_dir, "accuracy"), "signature": test["signature"],
    }


SST2 = Task(
    name="sst2", title="SST-2 (sentences)", metric="accuracy",
    rows=CLASSIFY_ROWS, train=train_classify_row,
    columns=[("dev acc", "dev_accuracy"), ("test acc", "test_accuracy"),
             ("parameters", "parameters"), ("train sent/s", "train_sentences_per_second"),
             ("test sent/s", "test_sentences_per_second"), ("minutes", "train_minutes"),
             ("steps", "steps"), ("load before/after", "load")],
    notes=("Lower-cased words (min freq 2), random embeddings. Recurrent rows: the classify "
           "defaults (BiLSTM/BiGRU 150 each way, attention pooling, dropout 0.5, AdamW 2e-3); "
           "Transformer: 2 layers of 256, 4 heads, mean pooling, dropout 0.1, AdamW 5e-4 after "
           "a 200-step warm-up. Best dev checkpoint (every 200 steps); test sent/s includes "
           "reading the split."),
)

TAG_ROWS: dict[str, dict[str, Any]] = {
    "lstm": {"model": {}, "train": {}},
    "gru": {"model": {"model": "gru"}, "train": {}},
    "transformer": {"model": dict(model="transformer", hidden=256, heads=4, layers=2,
                                  dropout=0.1),
                    "train": dict(lr=5e-4, warmup=200, weight_decay=0.01)},
}
# CoNLL-2003 NER: the same rows with a CRF on top (Lample et al. 2016's BiLSTM-CRF)
NER_ROWS = {row: {"model": {**spec["model"], "corpus": "conll2003", "crf": True},
                  "train": spec["train"]} for row, spec in TAG_ROWS.items()}


def train_tag_row(row: str, spec: dict[str, Any], minutes: float, run_dir: Path,
                  data_dir: str | None) -> dict[str, Any]:
    from rnnlab.tasks.tag.config import TagConfig
    from rnnlab.tasks.tag.train import train_tag

    config = TagConfig(**{"corpus": "ud-english-ewt", **spec["model"]})
    train = TrainConfig(**{"epochs": 1000, "minutes": minutes, "eval_every": 500, "seed": 1,
                           "threads": 1, "device": "cpu", **spec["train"]})
    summary = train_tag(config, train, run_dir, data_dir=data_dir, show_progress=False)
    metric = "f1" if config.crf else "accuracy"  # entity F1 for NER, token accuracy for UPOS
    return {
        "config": to_dict(config), "train": to_dict(train), "parameters": summary["parameters"],
        "train_minutes": round(summary["seconds"] / 60, 2), "steps": summary["steps"],
        f"dev_{metric}": round(100 * summary["valid"][metric], 2),
        f"test_{metric}": round(100 * summary["test"][metric], 2),
        "train_tokens_per_second": training_tokens_per_second(run_dir),
        "test_tokens_per_second": summary["test"]["tokens_per_second"],
        "dev_curve": dev_curve(run_dir, metric), "signature": summary["test"]["signature"],
    }


UD_EWT = Task(
    name="ud-english-ewt", title="UD English-EWT UPOS", metric="accuracy",
    rows=TAG_ROWS, train=train_tag_row,
    columns=[("dev acc", "dev_accuracy"), ("test acc", "test_accuracy"),
             ("parameters", "parameters"), ("train tok/s", "train_tokens_per_second"),
             ("test tok/s", "test_tokens_per_second"), ("minutes", "train_minutes"),
             ("steps", "steps"), ("load before/after", "load")],
    notes=("Words + char BiLSTM features, softmax output. Recurrent row: the tag defaults "
           "(BiLSTM 100 each way, dropout 0.5); Transformer: 2 layers of 256, 4 heads, "
           "dropout 0.1, AdamW 5e-4 after a 200-step warm-up."),
)

CONLL = Task(
    name="conll2003", title="CoNLL-2003 English NER", metric="f1",
    rows=NER_ROWS, train=train_tag_row,
    columns=[("dev F1", "dev_f1"), ("test F1", "test_f1"), ("parameters", "parameters"),
             ("train tok/s", "train_tokens_per_second"),
             ("test tok/s", "test_tokens_per_second"), ("minutes", "train_minutes"),
             ("steps", "steps"), ("load before/after", "load")],
    notes=("Words + char BiLSTM features, CRF output, entity F1 (seqeval, IOB1 read as "
           "published). Recurrent rows: the tag defaults (BiLSTM/BiGRU 100 each way, dropout "
           "0.5); Transformer: 2 layers of 256, 4 heads, dropout 0.1, AdamW 5e-4 after a "
           "200-step warm-up. dev = testa, test = testb; best dev checkpoint."),
)

TASKS = {task.name: task for task in (MULTI30K, TINYSHAKESPEARE, PTB, SST2, UD_EWT, CONLL)}


# -- the common part ---------------------------------------------------------------------------


def cell(record: dict[str, Any], key: str) -> str:
    if key == "load":
        return "/".join(f"{v:.1f}" for v in (record["load_before"], record["load_after"]))
    value = record.get(key)
    if value is None:
        return "-"
    if key == "parameters":
        return f"{value / 1e6:.2f}M"
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown(task: Task, results: dict[str, Any]) -> str:
    lines = [f"# {task.title}: recurrent vs Transformer at the same CPU budget", "",
             task.notes, "", "| row | " + " | ".join(h for h, _ in task.columns) + " |",
             "|---" * (len(task.columns) + 1) + "|"]
    for row, record in results["rows"].items():
        lines.append(f"| {row} | " + " | ".join(cell(record, k) for _, k in task.columns) + " |")
    lines += ["", "Each row: " + "; ".join(
        f"{row} `{r['command']}` at {r['date']} (commit {r['commit']})"
        for row, r in results["rows"].items()), "",
        f"Machine: {results['machine']}, torch {results['torch']}, 1 thread.", ""]
    remeasured = {row: r["sample_remeasured"] for row, r in results["rows"].items()
                  if "sample_remeasured" in r}
    if remeasured:
        lines += ["Sample speed re-measured from the saved models (`--resample`; the other "
                  "columns are from the training run): " + "; ".join(
                      f"{row} {when}" for row, when in remeasured.items()), ""]
    signature = next((r.get("bleu_signature") for r in results["rows"].values()), None)
    if signature:
        lines += [f"BLEU signature: `{signature}`", ""]
    return "\n".join(lines)


def resample(task: Task, rows: list[str], results: dict[str, Any], runs: Path, name: str,
             commit: str) -> int:
    """Re-measure the sample speed of the table's rows (median of three streams) from the
    models their runs saved, and record when and at which commit."""
    from rnnlab.tasks.lm.run import LMRun

    for row in rows:
        if row not in results["rows"] or not (runs / row / "model.safetensors").exists():
            print(f"{row}: not in the table or no saved model under {runs / row}; skipped")
            continue
        run = LMRun(runs / row, device="cpu")
        load = os.getloadavg()[0]
        speed = sorted(sampling_speed(run) for _ in range(3))[1]
        record = results["rows"][row]
        print(f"{row}: sample {record['sample_chars_per_second']} -> {speed:.1f} tokens/s")
        record["sample_chars_per_second"] = round(speed, 1)
        record["sample_remeasured"] = (
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC at commit {commit}, "
            f"load {load:.1f}")
    save_record(name, results, markdown(task, results))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--minutes", type=float, required=True,
                        help="training budget of every row (evaluations included)")
    parser.add_argument("--rows", default="", help="comma-separated rows (default: all)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", default=str(ROOT / "runs" / "rnn-vs-transformer"))
    parser.add_argument("--resample", action="store_true",
                        help="language-model tasks: train nothing, re-measure the sample speed "
                             "of rows already in the table from their saved models with this "
                             "code (e.g. after a faster sampler), and note it in the table")
    args = parser.parse_args()
    task = TASKS[args.task]
    rows = [r for r in args.rows.split(",") if r] or list(task.rows)
    unknown = sorted(set(rows) - set(task.rows))
    if unknown:
        parser.error(f"unknown rows for {task.name}: {', '.join(unknown)}; "
                     f"choose from {', '.join(task.rows)}")
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    name = f"rnn_vs_transformer_{task.name}_{args.minutes:g}min"  # one table per budget
    path = RESULTS / f"{name}.json"
    results = json.loads(path.read_text()) if path.exists() else {"rows": {}}
    if args.resample:
        if "sample_chars_per_second" not in dict(task.columns).values():
            parser.error(f"--resample: {task.name} is not a language-model task")
        return resample(task, rows, results, Path(args.runs) / f"{task.name}-{args.minutes:g}min",
                        name, commit)
    for row in rows:
        run_dir = Path(args.runs) / f"{task.name}-{args.minutes:g}min" / row
        if run_dir.exists():
            parser.error(f"{run_dir} exists: move it away to rerun row {row}")
        load_before = os.getloadavg()[0]
        record = task.train(row, task.rows[row], args.minutes, run_dir, args.data_dir)
        record.update(
            load_before=load_before, load_after=os.getloadavg()[0], commit=commit,
            date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            command=f"python benchmarks/rnn_vs_transformer.py --task {task.name} "
                    f"--minutes {args.minutes:g} --rows {row}"
                    + (f" --data-dir {args.data_dir}" if args.data_dir else ""))
        # re-read: rows of one table may run in parallel processes (one per core), and the
        # file read at the start would drop the rows another process saved meanwhile
        results = json.loads(path.read_text()) if path.exists() else results
        results["rows"][row] = record
        results.update(machine=f"{platform.machine()} {os.cpu_count()} cpus (shared)",
                       torch=torch.__version__)
        save_record(name, results, markdown(task, results))
        from rnnlab.plots import plot_metric_against_minutes

        IMAGES.mkdir(parents=True, exist_ok=True)
        curves = {done: [(p["minutes"], p[task.metric]) for p in r["dev_curve"]]
                  for done, r in results["rows"].items()}
        plot_metric_against_minutes(curves, IMAGES / f"{name}.png",
                                    f"dev {task.metric}" + (" (greedy)" if task.name == "multi30k"
                                                            else ""), task.title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
