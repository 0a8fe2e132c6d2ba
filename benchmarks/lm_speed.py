"""Language-model speed against plain torch in the same run.

1. Training tokens/s (forward + backward + optimizer step) of rnnlab's LanguageModel against a
   plain `torch.nn.Embedding -> torch.nn.LSTM -> torch.nn.Linear` model of the same size and batch.
2. Sampling characters/s of `rnnlab sample`'s path (the compiled token loop of
   `tasks/lm/compiled_sampling.py`, or `LanguageModel.step` through `decoding.sampling.sample`
   where it cannot be built) against stepping `torch.nn.LSTM` one character at a time; the
   Python step loop is timed in the same rounds too ("python step" column).
3. (`--parts loop`) The whole training loop: `rnnlab train lm --preset ptb-small` (or
   `--loop-preset shakespeare-char`, the char LM) against the plain pytorch/examples-style loop
   of lm_plain_loop.py, same data and settings, one thread
   each, as processes: alone (one after the other, ABBA) and started together (one per core).
   Time per step from each process's own log (CPU user and system seconds, wall clock) between
   its first and last train record, so start-up, the final evaluation and saving are left out.

Usage: python benchmarks/lm_speed.py [--quick] [--threads N] [--parts training,sampling,loop]
Writes benchmarks/results/lm_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.decoding.sampling import sample
from rnnlab.nn import native
from rnnlab.tasks.lm.compiled_sampling import compiled_sampler
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.lm.model import LanguageModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402
from timing import CLOCKS, Clock, add_clock_argument, clock_from_args, paired_block  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


class PlainLM(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, hidden, layers)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):
        out, state = self.rnn(self.embedding(tokens), state)
        return self.decoder(out), state


def _median_time(fn, repeats: int, clock: Clock) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def training_speed(vocab, embed, hidden, layers, batch, bptt, repeats, clock=CLOCKS["wall"]):
    torch.manual_seed(0)
    ours = LanguageModel(vocab, LMConfig(cell="lstm", embedding_size=embed, hidden=hidden,
                                         layers=layers, dropout=0.0, dropout_output=0.0))
    plain = PlainLM(vocab, embed, hidden, layers)
    x = torch.randint(0, vocab, (bptt, batch))
    y = torch.randint(0, vocab, (bptt, batch))

    def make_step(model):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

        def step():
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()

        return step

    steps = {"rnnlab": make_step(ours), "torch": make_step(plain)}
    for fn in steps.values():
        fn()  # warm-up
    seconds: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(2 * repeats):  # two steps each, ABBA: both see the same load
        torch_time, ours_time = paired_block(steps["torch"], steps["rnnlab"], 2, clock)
        seconds["torch"].append(torch_time)
        seconds["rnnlab"].append(ours_time)
    tokens = batch * bptt
    rates = {k: tokens / statistics.median(v) for k, v in seconds.items()}
    rates["ratio"] = statistics.median(t / o for o, t in zip(seconds["rnnlab"],
                                                                seconds["torch"], strict=True))
    return rates


def sampling_speed(vocab, embed, hidden, layers, length, clock=CLOCKS["wall"]):
    torch.manual_seed(0)
    ours = LanguageModel(vocab, LMConfig(cell="lstm", embedding_size=embed, hidden=hidden,
                                         layers=layers, dropout=0.0, dropout_output=0.0)).eval()
    plain = PlainLM(vocab, embed, hidden, layers).eval()

    def run_ours():  # what LMRun.generate runs
        gen = torch.Generator().manual_seed(0)
        compiled = compiled_sampler(ours)
        tokens = (compiled.sample([1], length, temperature=0.8, generator=gen) if compiled
                  else sample(ours.step, [1], length, temperature=0.8, generator=gen))
        for _ in tokens:
            pass

    def run_python_step():
        gen = torch.Generator().manual_seed(0)
        for _ in sample(ours.step, [1], length, temperature=0.8, generator=gen):
            pass

    @torch.no_grad()
    def run_plain():
        gen = torch.Generator().manual_seed(0)
        token, state = torch.tensor([[1]]), None
        for _ in range(length):
            logits, state = plain(token, state)
            probs = torch.softmax(logits[-1] / 0.8, dim=-1)
            token = torch.multinomial(probs, 1, generator=gen)

    seconds: dict[str, list[float]] = {"rnnlab": [], "torch": [], "python_step": []}
    runs = (("rnnlab", run_ours), ("torch", run_plain), ("python_step", run_python_step))
    for round_ in range(6):  # interleaved, order reversed every other round (ABC CBA)
        for name, fn in runs if round_ % 2 == 0 else runs[::-1]:
            seconds[name].append(_median_time(fn, 1, clock))
    rates = {name: length / statistics.median(times) for name, times in seconds.items()}
    rates["round_ratios"] = [t / o for o, t in zip(seconds["rnnlab"], seconds["torch"],
                                                   strict=True)]
    return rates


def _per_step(log: Path) -> dict[str, float]:
    """Seconds per step (CPU user, system, both; wall) between the first and last train record."""
    records = [r for r in map(json.loads, log.read_text().splitlines()) if r["kind"] == "train"]
    first, last = records[0], records[-1]
    steps = last["step"] - first["step"]
    user = (last["cpu_user"] - first["cpu_user"]) / steps
    system = (last["cpu_system"] - first["cpu_system"]) / steps
    return {"user": user, "system": system, "cpu": user + system,
            "wall": (last["time"] - first["time"]) / steps, "steps": steps}


def _loop_commands(steps: int, folder: Path, tag: str,
                   preset: str) -> dict[str, tuple[list[str], Path]]:
    """name -> (command, the log it writes). rnnlab evaluates only after the last step (left
    out of the timing), as the plain loop never does."""
    here = Path(__file__).resolve().parent
    run_dir = folder / f"rnnlab-{tag}"
    return {
        "plain": ([sys.executable, str(here / "lm_plain_loop.py"), "--steps", str(steps),
                   "--log-every", "50", "--threads", "1", "--preset", preset,
                   "--log", str(folder / f"plain-{tag}")],
                  folder / f"plain-{tag}"),
        "rnnlab": ([sys.executable, "-m", "rnnlab", "train", "lm", "--preset", preset,
                    "--max-steps", str(steps), "--log-every", "50", "--threads", "1",
                    "--eval-every", str(10 * steps),
                    "--run-dir", str(run_dir)], run_dir / "log.jsonl"),
    }


def loop_speed(steps: int, rounds: int, preset: str) -> dict:
    """Alone (ABBA over `rounds` pairs) and started together (once); ratios plain/rnnlab time
    per step (> 1: rnnlab is faster)."""
    alone: dict[str, list[dict]] = {"plain": [], "rnnlab": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for r in range(rounds):
            order = ("plain", "rnnlab") if r % 2 == 0 else ("rnnlab", "plain")
            for name in order:
                command, log = _loop_commands(steps, folder, f"alone{r}", preset)[name]
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                alone[name].append(_per_step(log))
                print(f"loop alone   {name:7s} round {r}: " + "  ".join(
                    f"{k} {v * 1e3:.1f} ms" for k, v in alone[name][-1].items() if k != "steps"),
                    flush=True)
        commands = _loop_commands(steps, folder, "together", preset)
        processes = {name: subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
                     for name, (command, _) in commands.items()}
        for name, process in processes.items():
            if process.wait() != 0:
                raise RuntimeError(f"{name} failed in the together run")
        together = {name: _per_step(log) for name, (_, log) in commands.items()}
    for name, row in together.items():
        print(f"loop together {name:7s}: " + "  ".join(
            f"{k} {v * 1e3:.1f} ms" for k, v in row.items() if k != "steps"), flush=True)
    ratio_alone = {clock: statistics.median(
        p[clock] / o[clock] for p, o in zip(alone["plain"], alone["rnnlab"], strict=True))
        for clock in ("cpu", "wall")}
    ratio_together = {clock: together["plain"][clock] / together["rnnlab"][clock]
                      for clock in ("cpu", "wall")}
    return {"preset": preset, "steps": steps, "rounds": rounds, "alone": alone,
            "together": together, "ratio_alone": ratio_alone, "ratio_together": ratio_together}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--parts", default="training,sampling",
                        help="which measurements to run (comma-separated)")
    parser.add_argument("--loop-steps", type=int, default=400,
                        help="training steps of each process in --parts loop")
    parser.add_argument("--loop-preset", choices=("ptb-small", "shakespeare-char"),
                        default="ptb-small", help="the model and data of --parts loop")
    parser.add_argument("--loop-rounds", type=int, default=2,
                        help="alone: pairs of runs, ABBA")
    parser.add_argument("--output", default="lm_speed",
                        help="results file stem in benchmarks/results")
    add_clock_argument(parser)
    args = parser.parse_args()
    clock = clock_from_args(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    repeats = 2 if args.quick else 5
    configs = [  # (name, vocab, embed, hidden, layers, batch, bptt)
        ("char 2x256 B32 T64", 65, 64, 256, 2, 32, 64),
        ("word 2x200 B20 T35 (ptb-small)", 10000, 200, 200, 2, 20, 35),
        ("char 1x512 B32 T128", 65, 64, 512, 1, 32, 128),
    ]
    results = {"command": " ".join([sys.executable.split("/")[-1], *sys.argv]),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "loadavg_before": load_before, "clock": args.clock, "training": [],
               "sampling": []}
    for name, vocab, embed, hidden, layers, batch, bptt in (
            configs if "training" in args.parts else []):
        rates = training_speed(vocab, embed, hidden, layers, batch, bptt, repeats, clock)
        ratio = rates["ratio"]
        results["training"].append({"config": name, **rates})
        print(f"train  {name:32s} rnnlab {rates['rnnlab']:9.0f} tok/s  torch "
              f"{rates['torch']:9.0f} tok/s  ratio {ratio:.2f} (target >= 0.95)", flush=True)
    sampling_configs = (("char 1x512", 65, 64, 512, 1), ("char 2x256", 65, 64, 256, 2))
    for name, vocab, embed, hidden, layers in (
            sampling_configs if "sampling" in args.parts else ()):
        rates = sampling_speed(vocab, embed, hidden, layers, 300 if args.quick else 1000,
                               clock)
        ratio = statistics.median(rates.pop("round_ratios"))
        results["sampling"].append({"config": name, **rates, "ratio": ratio})
        print(f"sample {name:32s} rnnlab {rates['rnnlab']:9.0f} ch/s   torch "
              f"{rates['torch']:9.0f} ch/s   ratio {ratio:.2f} (target >= 5); python step "
              f"{rates['python_step']:9.0f} ch/s", flush=True)
    if "loop" in args.parts:
        results["loop"] = loop_speed(args.loop_steps, args.loop_rounds, args.loop_preset)
    results["loadavg_after"] = os.getloadavg()
    lines = [
        "# Language-model speed (ratio to plain torch, same run)", "",
        f"Command: `{results['command']}`; torch {results['torch']}, "
        f"{results['threads']} threads, {args.clock} clock, load average "
        f"{load_before[0]:.2f} before, {results['loadavg_after'][0]:.2f} after. Training: the "
        "two models alternate step by step (ABBA, two steps each per pair), ratio = median of "
        "per-pair time ratios; "
        "sampling: interleaved runs of 1,000 characters (rnnlab = what `rnnlab sample` runs: "
        f"the compiled token loop {'(built)' if native.available() else '(NOT built)'}; "
        "python step = LanguageModel.step through decoding.sampling.sample).", "",
        "| what | config | rnnlab | torch | ratio | target |", "|---|---|---:|---:|---:|---:|",
    ]
    for row in results["training"]:
        lines.append(f"| train tok/s | {row['config']} | {row['rnnlab']:.0f} | "
                     f"{row['torch']:.0f} | {row['ratio']:.2f} | >= 0.95 |")
    for row in results["sampling"]:
        lines.append(f"| sample ch/s | {row['config']} | {row['rnnlab']:.0f} | "
                     f"{row['torch']:.0f} | {row['ratio']:.2f} | >= 5 |")
        lines.append(f"| sample ch/s, python step | {row['config']} | "
                     f"{row['python_step']:.0f} | {row['torch']:.0f} | "
                     f"{row['python_step'] / row['torch']:.2f} | |")
    if "loop" in results:
        loop = results["loop"]
        preset = loop.get("preset", "ptb-small")
        lines += ["", f"Whole training loop, {loop['steps']} steps a process: `rnnlab train "
                  f"lm --preset {preset}` vs benchmarks/lm_plain_loop.py --preset {preset} "
                  "(pytorch/examples style), one thread each; ms per step between the "
                  "first and last train record of each process's log (alone: median over "
                  f"{loop['rounds']} runs each, ABBA). Ratio = plain time / rnnlab time "
                  "(target >= 1.0).", "",
                  "| condition | process | CPU user ms | CPU system ms | CPU ms | wall ms |",
                  "|---|---|---:|---:|---:|---:|"]
        for condition in ("alone", "together"):
            for name in ("plain", "rnnlab"):
                rows = loop[condition][name]
                rows = rows if isinstance(rows, list) else [rows]
                med = {k: statistics.median(r[k] for r in rows) * 1e3
                       for k in ("user", "system", "cpu", "wall")}
                lines.append(f"| {condition} | {name} | {med['user']:.1f} | "
                             f"{med['system']:.1f} | {med['cpu']:.1f} | {med['wall']:.1f} |")
        for condition in ("alone", "together"):
            ratio = loop[f"ratio_{condition}"]
            lines.append(f"\nRatio {condition}: CPU {ratio['cpu']:.2f}, wall {ratio['wall']:.2f}.")
    save_record(args.output, results, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
