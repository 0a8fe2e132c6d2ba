"""`rnnlab serve RUN_DIR [RUN_DIR ...]`: an HTTP API and a web page over trained runs."""

from __future__ import annotations

import argparse
import os
import sys

from rnnlab.cli.common import add_device, add_threads
from rnnlab.config import checked_type
from rnnlab.serve.limits import ServeLimits
from rnnlab.serve.process import MODEL_WORKERS

TOKEN_VARIABLE = "RNNLAB_SERVE_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="serve trained runs over HTTP (API + web page)",
        description="Loads each run once and serves it at /models/NAME/ACTION (classify, tag, "
                    "translate, sample, score), with a web page at / and the OpenAPI "
                    "description at /docs. Needs the [serve] extra.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--name", action="append", default=[], metavar="NAME",
                   help="the URL name of each run, in order (default: its folder's name)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=checked_type(int, ge=0, le=65535), default=8000,
                   help="port to listen on (0: any free port)")
    p.add_argument("--token", default=None,
                   help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_VARIABLE})")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from this origin (default: none)")
    add_device(p)
    add_threads(p)
    defaults = ServeLimits()
    limits = p.add_argument_group("limits and batching")
    for field, kind, text in (
            ("max_request_bytes", int, "largest request body"),
            ("max_text_chars", int, "longest text (or prime)"),
            ("max_items", int, "texts per request"),
            ("max_sample_length", int, "tokens one sample may ask for"),
            ("max_beam", int, "widest translation beam"),
            ("max_batch", int, "requests per micro-batch (1: no batching)"),
            ("batch_wait_ms", float, "how long a batch waits for more requests"),
            ("max_queue", int, "requests waiting per model before 503")):
        limits.add_argument("--" + field.replace("_", "-"),
                            type=checked_type(kind, ge=0 if kind is float else 1),
                            default=getattr(defaults, field), help=text)
    p.add_argument("--model-workers", choices=MODEL_WORKERS, default="process",
                   help="where each model's batches run: a process of its own (default; it "
                        "computes on another core while the server answers HTTP) or a thread "
                        "of the server's process (less memory, one core for everything)")
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level")
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import dataclasses

    from rnnlab.errors import RnnlabError

    try:
        import uvicorn

        from rnnlab.serve.app import create_app
        from rnnlab.serve.models import load_models
    except ImportError as err:
        raise RnnlabError(f"rnnlab serve needs the serve extra ({err.name} is missing): "
                          "pip install 'rnnlab[serve]'") from None
    if not 0 < args.port < 65536:
        raise RnnlabError(f"--port must be in 1..65535, got {args.port}")
    limits = ServeLimits(**{f.name: getattr(args, f.name)
                            for f in dataclasses.fields(ServeLimits)})
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    models = load_models(args.run_dirs, args.name, args.device)
    app = create_app(models, limits, token=token, cors_origins=args.cors_origin,
                     model_workers=args.model_workers, model_threads=args.threads or None)
    print(f"rnnlab serve: {', '.join(models)} at http://{args.host}:{args.port}/ "
          f"({'token required' if token else 'no token'})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
