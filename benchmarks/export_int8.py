"""ONNX fp32 vs int8 (onnxruntime dynamic quantization): quality and CPU latency per sentence of
three small trained models exported with `rnnlab export`: SST-2 (BiLSTM + attention, accuracy),
CoNLL-2003 NER (BiLSTM-CRF with char BiLSTM, entity F1) and PTB (word LSTM LM, perplexity).

Each model is exported twice (fp32, --quantize int8) and run in onnxruntime on the test split,
one sentence per call (batch 1, one intra-op thread): the latency is the wall time of those
calls (for NER with the NumPy Viterbi of tag_decoder.py; for PTB the steps of one sentence,
state carried from the previous sentence as in streaming evaluation). The PyTorch model's own
metric on the same split is printed beside them.

Train the models first (one thread, a few minutes each): bash benchmarks/export_int8_train.sh
Usage: python benchmarks/export_int8.py [--runs runs/export-int8] [--threads 1] [--name NAME]
Writes benchmarks/results/export_int8.{json,md}; exports in RUNS/onnx-{fp32,int8}-<name>.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

MODELS = ("sst2", "conll2003", "ptb")


def session(path: Path, threads: int):  # noqa: ANN201
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def latency(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"ms_mean": 1000 * statistics.fmean(seconds),
            "ms_p50": 1000 * ordered[len(seconds) // 2],
            "ms_p90": 1000 * ordered[int(len(seconds) * 0.9)]}


def eval_sst2(run_dir: Path, export_dir: Path, threads: int) -> dict[str, Any]:
    from rnnlab.tasks.classify.data import load_classify_data
    from rnnlab.tasks.classify.run import ClassifyRun

    run = ClassifyRun(run_dir, device="cpu")
    data = load_classify_data(run.config, None, vocab=run.vocab, labels=run.labels)
    ids, gold = data.encode(data.split("test"), run.config.max_len)
    graph = session(export_dir / "classifier.onnx", threads)
    correct, seconds = 0, []
    for sentence, label in zip(ids, gold, strict=True):
        tokens = np.array([sentence + [0] * max(0, 1 - len(sentence))])
        started = time.perf_counter()
        probs = graph.run(["probabilities"], {"tokens": tokens,
                                              "lengths": np.array([len(sentence)])})[0]
        seconds.append(time.perf_counter() - started)
        correct += int(probs[0].argmax()) == label
    return {"metric": "accuracy", "value": correct / len(gold), "sentences": len(gold),
            **latency(seconds)}


def eval_ner(run_dir: Path, export_dir: Path, threads: int) -> dict[str, Any]:
    from rnnlab.export.runtime.tag_decoder import Tagger
    from rnnlab.tasks.tag.data import load_tag_data
    from rnnlab.tasks.tag.predict import tag_metrics
    from rnnlab.tasks.tag.run import TagRun

    run = TagRun(run_dir, device="cpu")
    sentences = load_tag_data(run.config, None, run.scheme).split("test")
    tagger = Tagger(export_dir)
    tagger.session = session(export_dir / "tagger.onnx", threads)
    predicted, seconds = [], []
    for sentence in sentences:
        started = time.perf_counter()
        predicted.append(tagger.tag([sentence.words])[0])
        seconds.append(time.perf_counter() - started)
    scores = tag_metrics([s.tags for s in sentences], predicted, run.scheme)
    return {"metric": "f1", "value": scores["f1"], "sentences": len(sentences),
            **latency(seconds)}


def eval_ptb(run_dir: Path, export_dir: Path, threads: int) -> dict[str, Any]:
    from rnnlab.tasks.lm.run import LMRun

    run = LMRun(run_dir, device="cpu")
    ids = run.load_corpus().test.tolist()
    graph = session(export_dir / "lm_step.onnx", threads)
    names = [i.name for i in graph.get_inputs()][1:]
    layers, hidden = run.model.config.layers, run.model.config.hidden
    state = {n: np.zeros((layers, 1, hidden), np.float32) for n in names}
    nll, tokens, seconds, started = 0.0, 0, [], time.perf_counter()
    for previous, target in zip(ids[:-1], ids[1:], strict=True):
        logits, *new = graph.run(None, {"tokens": np.array([previous]), **state})
        state = dict(zip(names, new, strict=True))
        row = logits[0].astype(np.float64)
        nll += float(np.log(np.exp(row - row.max()).sum()) + row.max() - row[target])
        tokens += 1
        if target == run.vocab.eos_id:  # a sentence ends: its steps' time is one latency
            seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
    return {"metric": "ppl", "value": math.exp(nll / tokens), "tokens": tokens,
            "sentences": len(seconds), **latency(seconds)}


def torch_metric(name: str, run_dir: Path) -> float:
    if name == "sst2":
        from rnnlab.tasks.classify.run import ClassifyRun

        return ClassifyRun(run_dir, device="cpu").evaluate("test")["accuracy"]
    if name == "conll2003":
        from rnnlab.tasks.tag.run import TagRun

        return TagRun(run_dir, device="cpu").evaluate("test")["f1"]
    from rnnlab.tasks.lm.run import LMRun

    return LMRun(run_dir, device="cpu").evaluate("test")["ppl"]


EVALUATE = {"sst2": eval_sst2, "conll2003": eval_ner, "ptb": eval_ptb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="runs/export-int8", help="folder of the trained runs")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--name", default="export_int8", help="results file name (another "
                        "model set, e.g. a Transformer in RUNS/sst2, keeps its own)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from rnnlab.export.onnx_export import export_run

    runs = Path(args.runs)
    rows = []
    for name in args.models:
        run_dir = runs / name
        row: dict[str, Any] = {"model": name, "run": str(run_dir)}
        for precision in ("fp32", "int8"):
            out = runs / f"onnx-{precision}-{name}"
            started = time.perf_counter()
            result = export_run(run_dir, out, quantize=None if precision == "fp32" else "int8",
                                force=True)
            row[f"{precision}_export_seconds"] = round(time.perf_counter() - started, 1)
            row[f"{precision}_mb"] = round(sum(os.path.getsize(out / g) for g in result.graphs)
                                           / 1e6, 2)
            row[precision] = EVALUATE[name](run_dir, out, args.threads)
            print(name, precision, row[precision], flush=True)
        row["torch"] = torch_metric(name, run_dir)
        rows.append(row)
    record = {"command": " ".join(["python", *sys.argv]), "threads": args.threads,
              "torch": torch.__version__, "onnxruntime": _ort_version(),
              "machine": platform.processor() or platform.machine(),
              "load_average": os.getloadavg(), "rows": rows}
    save_record(args.name, record, markdown(record))


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def markdown(record: dict[str, Any]) -> str:
    lines = [f"# ONNX fp32 vs int8 (onnxruntime dynamic quantization), batch 1, "
             f"{record['threads']} thread(s)", "",
             f"`{record['command']}` · torch {record['torch']} · onnxruntime "
             f"{record['onnxruntime']} · load average {record['load_average'][0]:.1f}", "",
             "| model | metric (test) | PyTorch | ONNX fp32 | ONNX int8 | delta int8 | "
             "fp32 ms/sent (p50) | int8 ms/sent (p50) | speed-up | fp32 MB | int8 MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        fp32, int8 = r["fp32"], r["int8"]
        lines.append(
            f"| {r['model']} | {fp32['metric']} | {r['torch']:.4f} | {fp32['value']:.4f} | "
            f"{int8['value']:.4f} | {int8['value'] - fp32['value']:+.4f} | "
            f"{fp32['ms_mean']:.2f} ({fp32['ms_p50']:.2f}) | {int8['ms_mean']:.2f} "
            f"({int8['ms_p50']:.2f}) | {fp32['ms_mean'] / int8['ms_mean']:.2f}x | "
            f"{r['fp32_mb']} | {r['int8_mb']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
