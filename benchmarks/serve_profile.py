"""Where the time of a classify request goes in `rnnlab serve`, and how much micro-batching can
gain at most: a breakdown measured in one process, without sockets or a client competing for
the CPUs (benchmarks/serve_load.py measures the whole; this script explains its ratio).

1. The model alone (`ClassifyRun.predict`): sentences/s one at a time and in batches of 32 of
   SST-2 dev sentences. Their ratio is the most micro-batching can gain: it is the model's.
2. The app in process (httpx's ASGI transport: routing, validation, the batcher's thread
   hand-off, the response's serialisation; no HTTP parsing, no sockets), C concurrent clients
   in a closed loop, `max_batch` 1 vs 32, with the real model and with a model that answers at
   once (its record precomputed): the server's own cost per request. Also the mean batch the
   batcher formed.

Usage: python benchmarks/serve_profile.py --classify runs/sst2-serve [--threads 1]
Writes benchmarks/results/serve_profile.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import environment, save_record  # noqa: E402


def sst2_sentences(limit: int) -> list[str]:
    from rnnlab.data.registry import corpus_path

    lines = (corpus_path("sst2") / "dev.txt").read_text(encoding="utf-8").splitlines()
    return [line.split(" ", 1)[1] for line in lines if line.strip()][:limit]


def model_rates(run: Any, texts: list[str], seconds: float) -> dict[str, float]:  # noqa: ANN401
    """Sentences/s of `run.predict`, one at a time and in batches of 32 (cycling `texts`)."""
    rates = {}
    for size in (1, 32):
        done, started, index = 0, time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            batch = [texts[(index + i) % len(texts)] for i in range(size)]
            run.predict(batch)
            done, index = done + size, index + size
        rates[f"batch_{size}"] = done / (time.perf_counter() - started)
    return rates


async def asgi_rate(models: dict, texts: list[str], max_batch: int, clients: int,
                    seconds: float) -> dict[str, float]:
    import httpx

    from rnnlab.serve.app import create_app
    from rnnlab.serve.limits import ServeLimits

    app = create_app(models, ServeLimits(max_batch=max_batch))
    name = next(iter(models))
    done = 0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
        stop = time.perf_counter() + seconds

        async def one(k: int) -> None:
            nonlocal done
            index = k
            while time.perf_counter() < stop:
                body = {"texts": [texts[index % len(texts)]]}
                response = await client.post(f"/models/{name}/classify", json=body)
                if response.status_code != 200:
                    raise RuntimeError(response.text)
                done, index = done + 1, index + clients

        started = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(clients)))
        elapsed = time.perf_counter() - started
    worker = app.state.workers[name]
    app.state.close()
    return {"requests_per_s": done / elapsed, "ms_per_request": 1000 * elapsed / done,
            "mean_batch": worker.requests_run / max(worker.batches_run, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classify", default="runs/sst2-serve", help="an SST-2 classifier run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per point")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = environment()
    from rnnlab.serve.models import load_models

    texts = sst2_sentences(872)
    models = load_models([args.classify], ["sst2"], device="cpu")
    adapter = models["sst2"]
    adapter.run.predict(texts[:32])  # warm-up
    model = model_rates(adapter.run, texts, args.seconds)
    served: dict[str, Any] = {}
    real_batch = adapter.run_batch
    record = [p.to_json() for p in adapter.run.predict(texts[:1])]
    for kind in ("model", "instant"):
        adapter.run_batch = real_batch if kind == "model" else (
            lambda key, payloads: [record for _ in payloads])
        for clients in (1, 32):
            for max_batch in (1, 32):
                if clients == 1 and max_batch == 32:
                    continue
                point = asyncio.run(asgi_rate(models, texts, max_batch, clients, args.seconds))
                served[f"{kind} c{clients} b{max_batch}"] = point
    ceiling = model["batch_32"] / model["batch_1"]
    ratio = (served["model c32 b32"]["requests_per_s"]
             / served["model c32 b1"]["requests_per_s"])
    result = {"command": "python " + " ".join(sys.argv), "threads": args.threads,
              "model": model, "ceiling": ceiling, "served": served,
              "served_ratio_32_clients": ratio}
    lines = ["# Where a classify request's time goes in rnnlab serve (one process)", "",
             f"`{result['command']}`", "",
             f"The model alone (SST-2 BiLSTM + attention, `ClassifyRun.predict`): "
             f"{model['batch_1']:.1f} sentences/s one at a time, {model['batch_32']:.1f} in "
             f"batches of 32: **{ceiling:.2f}x**, the most batching can gain.", "",
             "| model | clients | max batch | requests/s | ms/request | mean batch |",
             "|---|---|---|---|---|---|"]
    for key, point in served.items():
        kind, clients, batch = key.split()
        lines.append(f"| {'real' if kind == 'model' else 'answers at once'} | {clients[1:]} | "
                     f"{batch[1:]} | {point['requests_per_s']:.1f} | "
                     f"{point['ms_per_request']:.2f} | {point['mean_batch']:.1f} |")
    lines += ["", f"In process at 32 clients, batched / one at a time: **{ratio:.2f}x** "
              f"({100 * ratio / ceiling:.0f}% of the model's own {ceiling:.2f}x)."]
    save_record("serve_profile", result, "\n".join(lines), env)


if __name__ == "__main__":
    main()
