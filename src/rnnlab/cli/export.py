"""`rnnlab export RUN_DIR --format onnx --out DIR [--quantize int8] [--force]`."""

from __future__ import annotations

import argparse
import json

from rnnlab.export.onnx_export import FORMATS, QUANTIZATIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained run as ONNX graphs with a model card",
        description="Write a run's model as ONNX graphs (checked against onnxruntime), its "
                    "vocabularies and labels as JSON, and a model card (README.md) into --out.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder from `rnnlab train`")
    parser.add_argument("--format", default="onnx", dest="export_format",
                        help=f"export format: {', '.join(FORMATS)} (default: onnx)")
    parser.add_argument("--out", required=True, help="output folder (created; must be empty)")
    parser.add_argument("--quantize", default=None,
                        help=f"write int8 graphs: {', '.join(QUANTIZATIONS)} (default: fp32)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from rnnlab.export.onnx_export import export_run

    if args.threads:
        torch.set_num_threads(args.threads)
    result = export_run(args.run_dir, args.out, fmt=args.export_format, quantize=args.quantize,
                        force=args.force)
    if args.json:
        print(json.dumps({"out": str(result.out_dir), "task": result.task,
                          "graphs": result.graphs, "files": result.files,
                          "fp32_max_abs_diff": result.max_abs_diff,
                          "quantize": result.quantize}, indent=2))
    else:
        checked = ", ".join(f"{g} (max |onnxruntime - torch| {d:.1e})"
                            for g, d in result.max_abs_diff.items())
        print(f"exported {result.task} run to {result.out_dir}: {checked}"
              + (f"; quantized to {result.quantize}" if result.quantize else ""))
        print(f"model card: {result.out_dir / 'README.md'}")
    return 0
