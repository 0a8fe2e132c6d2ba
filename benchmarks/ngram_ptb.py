"""The n-gram baseline on Penn Treebank (word level): perplexity and fit / evaluation time.

    python benchmarks/ngram_ptb.py [--data-dir DIR] [--orders 2 3 4 5] [--smoothing kneser-ney]

Reads ptb.{train,valid,test}.txt (Mikolov's files: one sentence per line, `<eos>` appended at
each line end, 10,000 word types with `<unk>` and `<eos>`), builds the Vocab from train, fits one
model per order on train and scores valid and test as one stream each. Writes
benchmarks/results/ngram_ptb.{json,md}.

Anchor: interpolated modified Kneser-Ney 5-gram, no count cut-offs, PTB test perplexity 141.2
(Mikolov et al. 2011, "Empirical evaluation and combination of advanced language modeling
techniques", Interspeech), made with SRILM sentence by sentence; rnnlab reads one stream.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

import rnnlab
from rnnlab.data.vocab import Vocab
from rnnlab.tasks.ngram import NGramConfig, NGramModel
from rnnlab.tasks.ngram.model import NEVER_PREDICTED

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

ANCHOR = {"order": 5, "smoothing": "kneser-ney", "test_ppl": 141.2, "source": "Mikolov et al. 2011"}
RESULTS = Path(__file__).resolve().parent / "results"


def data_dir(given: str | None) -> Path:
    """--data-dir, else $RNNLAB_DATA, else ../shared/data beside the checkout (DESIGN.md)."""
    if given:
        return Path(given)
    if os.environ.get("RNNLAB_DATA"):
        return Path(os.environ["RNNLAB_DATA"])
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def read_tokens(path: Path) -> list[str]:
    return [t for line in path.read_text().splitlines() for t in [*line.split(), "<eos>"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4, 5])
    parser.add_argument("--smoothing", default="kneser-ney", choices=["kneser-ney", "add-k"])
    parser.add_argument("--k", type=float, default=0.01, help="add-k pseudo-count")
    args = parser.parse_args()

    root = data_dir(args.data_dir) / "ptb"
    paths = {split: root / f"ptb.{split}.txt" for split in ("train", "valid", "test")}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        sys.exit(f"PTB not found: {', '.join(missing)} (see ../shared/data/README.md)")
    tokens = {split: read_tokens(path) for split, path in paths.items()}
    vocab = Vocab.build(tokens["train"])
    ids = {split: np.array(vocab.encode(t), dtype=np.int64) for split, t in tokens.items()}
    support = len(vocab) - len(NEVER_PREDICTED)

    rows = []
    for order in args.orders:
        config = NGramConfig(order=order, smoothing=args.smoothing, k=args.k)
        start = time.perf_counter()
        model = NGramModel.fit(ids["train"], len(vocab), config)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        test_nll = -model.score_stream(ids["test"]).sum()
        eval_s = time.perf_counter() - start
        valid_nll = -model.score_stream(ids["valid"]).sum()
        name = f"kn{order}" if args.smoothing == "kneser-ney" else f"add{args.k:g}-{order}"
        rows.append({
            "order": order,
            "smoothing": args.smoothing,
            "ngrams": int(sum(len(keys) for keys, _ in model.grams.values())),
            "fit_s": round(fit_s, 3),
            "eval_test_s": round(eval_s, 3),
            "valid_ppl": round(math.exp(valid_nll / len(ids["valid"])), 2),
            "test_ppl": round(math.exp(test_nll / len(ids["test"])), 2),
            "test_nll_sum": float(test_nll),
            "test_tokens": len(ids["test"]),
            "discounts": {str(k): [round(d, 4) for d in v] for k, v in model.discounts.items()},
            "signature": f"ppl|corpus:ptb|split:test|tok:word|vocab:{support}|ngram:{name}"
            f"|rnnlab:{rnnlab.__version__}|numpy:{np.__version__}|torch:{torch.__version__}",
        })
        print(f"order {order}: test ppl {rows[-1]['test_ppl']:.2f}  fit {fit_s:.2f}s  "
              f"eval {eval_s:.2f}s", flush=True)

    command = "python benchmarks/ngram_ptb.py " + shlex.join(sys.argv[1:])
    env = {
        "command": command.strip(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "rnnlab": rnnlab.__version__,
        "data_sha256": {
            s: hashlib.sha256(p.read_bytes()).hexdigest() for s, p in paths.items()
        },
        "tokens": {split: len(t) for split, t in ids.items()},
        "vocab": {"ids": len(vocab), "predicted": support},
    }
    RESULTS.mkdir(exist_ok=True)
    result = {"benchmark": "ngram_ptb", **env, "anchor": ANCHOR, "rows": rows}

    lines = [
        "# n-gram baseline on PTB (word level)",
        "",
        f"Command: `{env['command']}`  ",
        f"{env['date']}, {env['machine']}, {env['cpu_count']} CPUs, load average "
        f"{env['load_average']}, numpy {env['numpy']}, torch {env['torch']}, "
        f"rnnlab {env['rnnlab']}.  ",
        f"Train / valid / test tokens (with `<eos>`): {env['tokens']['train']:,} / "
        f"{env['tokens']['valid']:,} / {env['tokens']['test']:,}; {support:,} predicted words.",
        "",
        "| order | smoothing | n-grams | fit (s) | valid ppl | test ppl | test eval (s) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['order']} | {r['smoothing']} | {r['ngrams']:,} | {r['fit_s']:.2f} | "
                     f"{r['valid_ppl']:.2f} | {r['test_ppl']:.2f} | {r['eval_test_s']:.2f} |")
    lines += [
        "",
        f"Anchor: {ANCHOR['smoothing']} {ANCHOR['order']}-gram, test ppl {ANCHOR['test_ppl']} "
        f"({ANCHOR['source']}, SRILM, sentence by sentence; here one stream, start padded with "
        "`<bos>`).  ",
        f"Signature: `{rows[-1]['signature']}`" if rows else "",
        "",
    ]
    save_record("ngram_ptb", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
