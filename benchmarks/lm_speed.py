"""Language-model speed against plain torch in the same run.

1. Training tokens/s (forward + backward + optimizer step) of rnnlab's LanguageModel against a
   plain `torch.nn.Embedding -> torch.nn.LSTM -> torch.nn.Linear` model of the same size and batch.
2. Sampling characters/s of `rnnlab sample`'s path (`LanguageModel.step` through
   `decoding.sampling.sample`) against stepping `torch.nn.LSTM` one character at a time.

Usage: python benchmarks/lm_speed.py [--quick] [--threads N]
Writes benchmarks/results/lm_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.decoding.sampling import sample
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

    def run_ours():
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

    seconds: dict[str, list[float]] = {"rnnlab": [], "torch": []}
    for _ in range(5):  # interleaved, so both see the same machine load
        for name, fn in (("rnnlab", run_ours), ("torch", run_plain)):
            seconds[name].append(_median_time(fn, 1, clock))
    rates = {name: length / statistics.median(times) for name, times in seconds.items()}
    rates["round_ratios"] = [t / o for o, t in zip(seconds["rnnlab"], seconds["torch"],
                                                   strict=True)]
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--parts", default="training,sampling",
                        help="which measurements to run (comma-separated)")
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
              f"{rates['torch']:9.0f} ch/s   ratio {ratio:.2f} (target >= 5)", flush=True)
    results["loadavg_after"] = os.getloadavg()
    lines = [
        "# Language-model speed (ratio to plain torch, same run)", "",
        f"Command: `{results['command']}`; torch {results['torch']}, "
        f"{results['threads']} threads, {args.clock} clock, load average "
        f"{load_before[0]:.2f} before, {results['loadavg_after'][0]:.2f} after. Training: the "
        "two models alternate step by step (ABBA, two steps each per pair), ratio = median of "
        "per-pair time ratios; "
        "sampling: interleaved runs of 1,000 characters.", "",
        "| what | config | rnnlab | torch | ratio | target |", "|---|---|---:|---:|---:|---:|",
    ]
    for row in results["training"]:
        lines.append(f"| train tok/s | {row['config']} | {row['rnnlab']:.0f} | "
                     f"{row['torch']:.0f} | {row['ratio']:.2f} | >= 0.95 |")
    for row in results["sampling"]:
        lines.append(f"| sample ch/s | {row['config']} | {row['rnnlab']:.0f} | "
                     f"{row['torch']:.0f} | {row['ratio']:.2f} | >= 5 |")
    save_record(args.output, results, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
