"""ONNX fp32 vs int8 for a Transformer: a trained GPT (character level) exported with
`rnnlab export` (the step graph with the key/value cache as state), run in onnxruntime over a
slice of the test split (valid where the corpus has none), against the PyTorch model's own
`step` on the same tokens.

Protocol (the same for the three): the slice is cut into windows of `block_size` tokens; in
each window every token after the first is predicted from the window's earlier tokens, one
step at a time with the cache (so each of the block_size - 1 predictions per window sees 1 ..
block_size - 1 tokens of context). Reported: bits per character, the share of positions whose
argmax equals PyTorch's, the max abs logit difference to PyTorch, and the wall time per step
(batch 1, one intra-op thread).

Usage: python benchmarks/export_int8_gpt.py --run RUN_DIR [--tokens 4096] [--threads 1]
Writes benchmarks/results/export_int8_gpt.{json,md}; exports in OUT/onnx-{fp32,int8}.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import environment, save_record  # noqa: E402


def log_softmax(row: np.ndarray) -> np.ndarray:
    row = row.astype(np.float64)
    return row - (np.log(np.exp(row - row.max()).sum()) + row.max())


def windows(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids) - 1, size) if len(ids[i:i + size]) > 1]


def run_torch(model: torch.nn.Module, chunks: list[list[int]]) -> tuple[list[np.ndarray], float]:
    logits, started = [], time.perf_counter()
    with torch.no_grad():
        for chunk in chunks:
            state = None
            for token in chunk[:-1]:
                out, state = model.step(torch.tensor([token]), state)
                logits.append(out[0].numpy())
    return logits, time.perf_counter() - started


def run_onnx(path: Path, chunks: list[list[int]], threads: int, layers: int, heads: int,
             head_dim: int) -> tuple[list[np.ndarray], float]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    graph = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    empty = np.zeros((layers, 1, heads, 0, head_dim), np.float32)
    logits, started = [], time.perf_counter()
    for chunk in chunks:
        keys, values = empty, empty
        for token in chunk[:-1]:
            out, keys, values = graph.run(None, {"tokens": np.array([[token]]), "keys": keys,
                                                 "values": values})
            logits.append(out[0])
    return logits, time.perf_counter() - started


def summary(logits: list[np.ndarray], targets: list[int], reference: list[np.ndarray],
            seconds: float) -> dict[str, Any]:
    nll = -sum(log_softmax(row)[t] for row, t in zip(logits, targets, strict=True))
    same = sum(int(a.argmax() == b.argmax()) for a, b in zip(logits, reference, strict=True))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(logits, reference, strict=True))
    return {"bpc": nll / len(targets) / math.log(2), "argmax_agreement": same / len(targets),
            "max_abs_logit_diff": diff, "ms_per_step": 1000 * seconds / len(targets)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained lm --model transformer run")
    parser.add_argument("--tokens", type=int, default=4096, help="test tokens read")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="export folder (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = environment()  # taken now, so it records the thread count the run uses
    from rnnlab.export.onnx_export import export_run
    from rnnlab.tasks.lm.run import LMRun

    run = LMRun(args.run, device="cpu")
    model = run.model.eval()
    config = model.config
    corpus_ids = run.load_corpus()
    split = "test" if corpus_ids.test is not None else "valid"  # tinyshakespeare: train/valid
    ids = getattr(corpus_ids, split)[: args.tokens].tolist()
    chunks = windows(ids, config.block_size)
    targets = [t for chunk in chunks for t in chunk[1:]]
    out = Path(args.out or tempfile.mkdtemp(prefix="export-int8-gpt-"))
    exports = {}
    for precision in ("fp32", "int8"):
        started = time.perf_counter()
        result = export_run(args.run, out / f"onnx-{precision}", force=True,
                            quantize=None if precision == "fp32" else "int8")
        exports[precision] = {"seconds": time.perf_counter() - started,
                              "bytes": (result.out_dir / "lm_step.onnx").stat().st_size,
                              "fp32_check": result.max_abs_diff["lm_step.onnx"]}
    reference, seconds = run_torch(model, chunks)
    rows = {"pytorch": summary(reference, targets, reference, seconds)}
    shape = (config.layers, config.heads, config.hidden // config.heads)
    for precision in ("fp32", "int8"):
        logits, seconds = run_onnx(out / f"onnx-{precision}" / "lm_step.onnx", chunks,
                                   args.threads, *shape)
        rows[f"onnx {precision}"] = {**summary(logits, targets, reference, seconds),
                                     **{f"export_{k}": v for k, v in exports[precision].items()}}
    corpus = config.corpus or "own files"
    record = {"run": str(args.run), "corpus": corpus, "split": split, "tokens": len(targets),
              "block_size": config.block_size, "threads": args.threads,
              "model": f"GPT {config.layers}x{config.hidden}, {config.heads} heads",
              "command": "python " + " ".join(sys.argv), "results": rows}
    lines = [f"# ONNX fp32 vs int8: GPT ({record['model']}, block {config.block_size}) on "
             f"{corpus} {split}, first {len(targets)} predictions", "",
             f"`{record['command']}`", "",
             "| runtime | bits/char | argmax = PyTorch | max abs logit diff | ms/step | graph MB |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        size = f"{row['export_bytes'] / 1e6:.2f}" if "export_bytes" in row else "-"
        lines.append(f"| {name} | {row['bpc']:.4f} | {100 * row['argmax_agreement']:.2f}% | "
                     f"{row['max_abs_logit_diff']:.2e} | {row['ms_per_step']:.3f} | {size} |")
    save_record("export_int8_gpt", record, "\n".join(lines), env)


if __name__ == "__main__":
    main()
