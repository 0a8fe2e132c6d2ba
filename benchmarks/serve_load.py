"""Load on `rnnlab serve`: requests/s and latency with and without micro-batching.

Starts the real server (a subprocess, uvicorn, `--threads T`, `--model-workers`: the server's
default, each model in a process of its own, or `thread`) once per batching setting
(`--max-batch 1`: one request at a time; `--max-batch 32`: micro-batches), both at once, and
drives them in turn (ABBA) with
an async HTTP client (aiohttp, whose C parser leaves more of the shared CPUs to the server
than httpx does) from this process: C clients, each sending its next request as
soon as the last is answered (a closed loop, as wrk and locust do), for `--seconds` after a
warm-up. Sentences come from the dev splits (SST-2 dev for classify, Multi30k valid for
translate), one per request. Then the first-token latency of streamed sampling: the time from
sending a sample request to the first `token` event, alone and with 8 streams at once.

The client shares the machine with the server, so the numbers are for this machine as a whole
(printed with the thread count and load average); the ratio of the two settings, measured in
the same run, is the point. `--client wrk` drives the same closed loop with wrk (C, from the
Debian package `wrk`; one thread, C connections, a Lua script cycling over the same bodies),
which takes a small fraction of the CPU that aiohttp takes per request and so leaves the shared
cores to the server; its p50/p99 of a point are the mean of the two halves' (wrk reports
percentiles, not samples).

    python benchmarks/serve_load.py --classify runs/sst2-serve --translate runs/m30k-serve \
        --lm runs/lm-serve --threads 1
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402
from rnnlab import __version__  # noqa: E402
from rnnlab.data.registry import corpus_path  # noqa: E402
from rnnlab.serve.limits import ServeLimits  # noqa: E402
from rnnlab.serve.process import MODEL_WORKERS  # noqa: E402

CONCURRENCY = (1, 8, 32)
BATCHING = (1, 32)  # --max-batch: off, on


def sst2_sentences(limit: int) -> list[str]:
    lines = (corpus_path("sst2") / "dev.txt").read_text(encoding="utf-8").splitlines()
    return [line.split(" ", 1)[1] for line in lines if line.strip()][:limit]


def multi30k_sentences(limit: int) -> list[str]:
    return (corpus_path("multi30k") / "valid.de").read_text(encoding="utf-8").splitlines()[:limit]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(runs: list[str], max_batch: int, threads: int, wait_ms: float,
                 model_workers: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "rnnlab.cli.main", "serve", *runs, "--port", str(port),
               "--threads", str(threads), "--max-batch", str(max_batch), "--batch-wait-ms",
               str(wait_ms), "--max-queue", "1024", "--model-workers", model_workers,
               "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"rnnlab serve exited with status {process.returncode}")
        try:
            httpx.get(url + "/health", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("rnnlab serve did not start within two minutes")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def closed_loop(url: str, path: str, bodies: list[dict], clients: int, seconds: float,
                      warmup: float) -> dict:
    """`clients` clients, each with one request in flight, for `seconds` after `warmup`."""
    feed = itertools.cycle(bodies)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + seconds

        async def client() -> None:
            nonlocal errors
            while (sent := time.perf_counter()) < stop_at:
                async with http.post(path, json=next(feed)) as response:
                    await response.read()
                    ok = response.status == 200
                done = time.perf_counter()
                if not ok:
                    errors += 1
                elif sent >= measure_from:
                    latencies.append(done - sent)

        await asyncio.gather(*(client() for _ in range(clients)))
    return {"clients": clients, "seconds": seconds, "errors": errors, "latencies": latencies}


WRK_SCRIPT = """
local bodies, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %d %d %d %.0f %.0f\\n", summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_loop(url: str, path: str, bodies: list[dict], clients: int, seconds: float,
             warmup: float) -> dict:
    """`closed_loop` by wrk: `clients` connections, one request in flight on each."""
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"rnnlab-serve-load-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    (folder / "post.lua").write_text(WRK_SCRIPT, encoding="utf-8")
    (folder / "bodies.txt").write_text("\n".join(json.dumps(b) for b in bodies) + "\n",
                                       encoding="utf-8")

    def run(duration: float) -> list[str]:
        command = ["wrk", "-t1", f"-c{clients}", f"-d{max(duration, 1):.0f}s", "--timeout",
                   "120s", "-s", str(folder / "post.lua"), url + path, "--",
                   str(folder / "bodies.txt")]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return next(line for line in output.splitlines() if line.startswith("RESULT")).split()

    run(warmup)
    _, requests, micros, errors, p50, p99 = run(seconds)
    return {"clients": clients, "seconds": int(micros) / 1e6, "errors": int(errors),
            "requests": int(requests), "p50_us": float(p50), "p99_us": float(p99)}


def merge(parts: list[dict]) -> dict:
    """One point from the halves measured apart (ABBA)."""
    if "p50_us" in parts[0]:  # wrk: counts and each half's percentiles
        seconds = sum(part["seconds"] for part in parts)
        return {"clients": parts[0]["clients"], "requests": sum(p["requests"] for p in parts),
                "errors": sum(part["errors"] for part in parts),
                "requests_per_second": sum(p["requests"] for p in parts) / seconds,
                "p50_ms": statistics.fmean(p["p50_us"] for p in parts) / 1000,
                "p99_ms": statistics.fmean(p["p99_us"] for p in parts) / 1000}
    latencies = [x for part in parts for x in part["latencies"]]
    seconds = sum(part["seconds"] for part in parts)
    return {"clients": parts[0]["clients"], "requests": len(latencies),
            "errors": sum(part["errors"] for part in parts),
            "requests_per_second": len(latencies) / seconds,
            "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99)}


async def first_tokens(url: str, path: str, streams: int, rounds: int, length: int) -> dict:
    """Time to the first `token` event of each of `streams` concurrent samples, `rounds` times."""
    waits: list[float] = []
    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=120)) as http:
        async def one(seed: int) -> None:
            sent = time.perf_counter()
            body = {"prime": "The ", "length": length, "seed": seed}
            async with http.post(path, json=body) as response:
                first = None
                async for line in response.content:
                    if first is None and line.startswith(b"event: token"):
                        first = time.perf_counter() - sent
                waits.append(first)

        for r in range(rounds):
            await asyncio.gather(*(one(r * streams + s) for s in range(streams)))
    return {"streams": streams, "samples": len(waits), "length": length,
            "p50_ms": 1000 * percentile(waits, 50), "p99_ms": 1000 * percentile(waits, 99),
            "mean_ms": 1000 * statistics.fmean(waits)}


def model_ceiling(run_dir: str, sentences: list[str], threads: int, seconds: float) -> dict:
    """The classifier alone, in this process, no HTTP: sentences/s one at a time and 32 at a
    time, which bounds what micro-batching can gain over HTTP."""
    from rnnlab.tasks.classify.run import ClassifyRun

    torch.set_num_threads(threads)
    run = ClassifyRun(run_dir, "cpu")
    run.predict(sentences[:32])
    rates = {}
    for size in (1, 32):
        feed = itertools.cycle(range(0, len(sentences) - size, size))
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            first = next(feed)
            run.predict(sentences[first:first + size])
            done += size
        rates[size] = done / (time.perf_counter() - start)
    return {"sentences_per_second_alone": rates[1], "sentences_per_second_32": rates[32],
            "ratio": rates[32] / rates[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classify", default="runs/sst2-serve", help="an SST-2 classifier run")
    parser.add_argument("--translate", default=None, help="a Multi30k translation run")
    parser.add_argument("--lm", default=None, help="a language-model run (first-token latency)")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per point")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--beam", type=int, default=1, help="translation beam of each request")
    parser.add_argument("--batch-wait-ms", type=float, default=ServeLimits().batch_wait_ms)
    parser.add_argument("--model-workers", choices=MODEL_WORKERS, default="process",
                        help="the server's --model-workers")
    parser.add_argument("--name", default="serve_load", help="results file name")
    parser.add_argument("--client", choices=("aiohttp", "wrk"), default="aiohttp",
                        help="the load generator (wrk: Debian's package, lighter on the CPUs)")
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("--client wrk needs wrk on the PATH (Debian: apt-get install wrk)")

    runs = {"classify": args.classify}
    if args.translate:
        runs["translate"] = args.translate
    names = {task: Path(run).resolve().name for task, run in runs.items()}
    workloads = {"classify": (f"/models/{names['classify']}/classify",
                              [{"texts": [t]} for t in sst2_sentences(500)])}
    if args.translate:
        workloads["translate"] = (f"/models/{names['translate']}/translate",
                                  [{"texts": [t], "beam": args.beam}
                                   for t in multi30k_sentences(500)])
    served = list(runs.values()) + ([args.lm] if args.lm else [])
    rows = []
    first_token = []
    # Both servers run at once and every point is measured in ABBA order (alone, batched,
    # batched, alone; half the time each), so a change of load on the shared machine during
    # the run falls on both settings alike.
    servers = [start_server(served, max_batch, args.threads, args.batch_wait_ms,
                            args.model_workers)
               for max_batch in BATCHING]
    try:
        for task, (path, bodies) in workloads.items():
            for clients in CONCURRENCY:
                halves: dict[int, list[dict]] = {b: [] for b in BATCHING}
                for index in (0, 1, 1, 0):
                    url = servers[index][1]
                    halves[BATCHING[index]].append(
                        wrk_loop(url, path, bodies, clients, args.seconds / 2, args.warmup / 2)
                        if args.client == "wrk" else asyncio.run(closed_loop(
                            url, path, bodies, clients, args.seconds / 2, args.warmup / 2)))
                for max_batch, parts in halves.items():
                    rows.append({"task": task, "max_batch": max_batch, **merge(parts)})
                    print(json.dumps(rows[-1]), flush=True)
        if args.lm:
            lm_path = f"/models/{Path(args.lm).resolve().name}/sample"
            for streams in (1, 8):
                first_token.append(asyncio.run(first_tokens(servers[-1][1], lm_path, streams,
                                                            5, 50)))
                print(json.dumps(first_token[-1]), flush=True)
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(30)

    ceiling = model_ceiling(args.classify, sst2_sentences(500), args.threads, args.seconds)
    print(json.dumps(ceiling), flush=True)
    speedup = {}
    for task in workloads:
        for clients in CONCURRENCY:
            alone, batched = (next(r for r in rows if r["task"] == task and
                                   r["clients"] == clients and r["max_batch"] == b)
                              for b in BATCHING)
            speedup[f"{task}@{clients}"] = (batched["requests_per_second"] /
                                            max(alone["requests_per_second"], 1e-9))
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    record = {"command": command, "rnnlab": __version__, "torch": torch.__version__,
              "server_threads": args.threads, "machine": platform.machine(),
              "cpus": os.cpu_count(), "load_average": os.getloadavg(),
              "runs": runs, "lm": args.lm, "seconds": args.seconds, "beam": args.beam,
              "client": args.client,
              "batch_wait_ms": args.batch_wait_ms, "model_workers": args.model_workers,
              "points": rows,
              "speedup_batched_over_alone": speedup, "first_token": first_token,
              "classifier_without_http": ceiling}
    lines = ["# rnnlab serve under load\n", f"`{command}`\n",
             f"torch {torch.__version__}, server threads {args.threads}, "
             f"{os.cpu_count()} CPUs, load average at the end "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; client ({args.client}) and "
             f"server share the machine; model workers: {args.model_workers}, batch wait "
             f"{args.batch_wait_ms:g} ms.\n",
             "| task | clients | max batch | requests/s | p50 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["task"], r["clients"], r["max_batch"])):
        lines.append(f"| {r['task']} | {r['clients']} | {r['max_batch']} | "
                     f"{r['requests_per_second']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['errors']} |")
    lines += ["", "| task @ clients | requests/s, batched / one at a time |", "|---|---|"]
    lines += [f"| {key} | {value:.2f}x |" for key, value in speedup.items()]
    lines += ["", "The classifier alone in one process (no HTTP, same threads): "
              f"{ceiling['sentences_per_second_alone']:.1f} sentences/s one at a time, "
              f"{ceiling['sentences_per_second_32']:.1f} in batches of 32 "
              f"({ceiling['ratio']:.2f}x): the most batching can gain here."]
    if first_token:
        lines += ["", "First token of a streamed sample (50 tokens, `--max-batch 32` server):",
                  "", "| concurrent streams | p50 ms | p99 ms |", "|---|---|---|"]
        lines += [f"| {f['streams']} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} |"
                  for f in first_token]
    save_record(args.name, record, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
