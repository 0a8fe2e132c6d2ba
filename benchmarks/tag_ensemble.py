"""Trained taggers deciding together (`rnnlab eval RUN_DIR --ensemble ...`): each member's and
the ensemble's dev and test scores, and the ensemble's tagging speed, in one table.

The members are named on the command line; choose them by a rule fixed before looking at test
scores (e.g. every seed of one setting), as the recorded runs do.

Usage: python benchmarks/tag_ensemble.py RUN_DIR RUN_DIR [...] --name NAME [--threads 1]
Writes benchmarks/results/tag_ensemble_NAME.{json,md}.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from rnnlab.tasks.tag.run import TagEnsemble

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402
from tag_pos import machine  # noqa: E402


def markdown(record: dict[str, Any]) -> str:
    metric = record["metric"]
    lines = [f"# Tagger ensemble: {record['name']}", "", f"Command: `{record['command']}`  ",
             f"torch {record['machine']['torch']}, {record['machine']['threads']} thread(s) on "
             f"a shared {record['machine']['cpus']}-core CPU. Metric: {metric} "
             "(entity F1: seqeval strict IOB2, both sides converted to BIO).", "",
             f"| model | dev {metric} | test {metric} | tagging speed (test) |",
             "|---|---:|---:|---:|"]
    for member in record["members"]:
        lines.append(f"| {member['run_dir']} | {100 * member['valid']:.2f} | "
                     f"{100 * member['test']:.2f} | |")
    e = record["ensemble"]
    lines.append(f"| **ensemble of {len(record['members'])}** | {100 * e['valid']:.2f} | "
                 f"**{100 * e['test']:.2f}** | {e['tokens_per_second']:,.0f} tokens/s |")
    lines += ["", f"Signature: `{e['signature']}`", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--name", required=True, help="suffix of the results files")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ensemble = TagEnsemble(args.run_dirs, args.device)
    metric = "accuracy" if ensemble.scheme == "none" else "f1"
    results = {split: ensemble.evaluate(split) for split in ("valid", "test")}
    record = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "name": args.name, "metric": metric, "machine": machine(),
        "members": [{"run_dir": run_dir, "valid": valid, "test": test} for run_dir, valid, test
                    in zip(results["test"]["members"], results["valid"][f"member_{metric}"],
                           results["test"][f"member_{metric}"], strict=True)],
        "ensemble": {"valid": results["valid"][metric], "test": results["test"][metric],
                     "tokens_per_second": results["test"]["tokens_per_second"],
                     "test_scores": {k: v for k, v in results["test"].items()
                                     if isinstance(v, float)},
                     "signature": results["test"]["signature"]},
    }
    save_record(f"tag_ensemble_{args.name}", record, markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
