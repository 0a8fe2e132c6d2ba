"""Speed of rnnlab's recurrent layers against torch.nn, measured in the same run.

For each configuration, every model is timed paired with its reference (`torch.nn.LSTM`,
`GRU`, `RNN` of the same size; with `pack_padded_sequence` when the batch has random lengths):
the two alternate call by call (ABBA order) inside each timed block, so both see the same
moments of machine load; ratios are rnnlab tokens/s over torch tokens/s, the median of the
per-round ratios. Forward is timed under `torch.no_grad()` (inference);
forward+backward as in training (loss = a fixed random projection of the output, backward, set
gradients to None). The input requires a gradient, as it does under an embedding.

Rows: rnnlab `impl="fused"` (torch's oneDNN kernel for the LSTM; the hand-written BPTT of
`rnnlab.nn.fused` for GRU, RNN, peephole LSTM and minimal GRU, its time loops compiled by
`rnnlab.nn.native`) and `impl="loop"` (the cells' textbook equations); "Python loops": what the
layer runs with the compiled loops switched off (the fallback where they cannot be built); and, for
comparison, the hand-written BPTT run on the standard LSTM ("LSTM fused.py"), which the layers do
not use for it.

Usage: python benchmarks/recurrent_speed.py [--quick] [--threads N] [--repeats N] [--budget S]
       [--configs abcdef] [--models LABEL ...] [--device cuda] (on a GPU machine: device_check.sh)
Writes benchmarks/results/recurrent_speed.{json,md} (--quick: recurrent_speed_quick.*; or --output).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn import GRU, LSTM, RNN, native
from rnnlab.training.allocator import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402
from timing import (  # noqa: E402
    CLOCKS,
    Clock,
    add_clock_argument,
    clock_from_args,
    cuda_clock,
    paired_block,
    timed_block,
)

RESULTS = Path(__file__).resolve().parent / "results"
BLOCK_SECONDS = 0.5  # each timed block repeats a call until the reference takes about this long


@dataclass(frozen=True)
class Config:
    key: str
    batch: int
    steps: int
    layers: int
    hidden: int
    input: int
    bidirectional: bool = False
    lengths: bool = False  # random lengths in [T/4, T], one of them T
    corpus: str | None = None  # lengths of a real training batch of this corpus (T: its longest)

    @property
    def name(self) -> str:
        layout = ("bi " if self.bidirectional else "") + f"{self.layers}x{self.hidden}"
        extra = f" {self.corpus} batch" if self.corpus else " lengths" if self.lengths else ""
        return f"{self.key}: B{self.batch} T{self.steps} {layout} in{self.input}{extra}"


CONFIGS = [
    Config("a", 20, 35, 2, 200, 200),
    Config("b", 20, 35, 2, 650, 650),
    Config("c", 32, 128, 1, 512, 64),
    Config("d", 64, 50, 1, 256, 256, bidirectional=True, lengths=True),
    # The word BiLSTMs of the CoNLL NER tagger (batch 16, 100 units each way over 100-dim words
    # and a 2x25 char BiLSTM) and the SST-2 classifier (batch 50, 150 each way over 300-dim
    # words), on a batch of real sentence lengths drawn from the training file (seed 0).
    Config("e", 16, 0, 1, 100, 150, bidirectional=True, lengths=True, corpus="conll2003"),
    Config("f", 50, 0, 1, 150, 300, bidirectional=True, lengths=True, corpus="sst2"),
]


def corpus_lengths(corpus: str) -> list[int]:
    """Sentence lengths (tokens) of a corpus's training file."""
    from rnnlab.data.registry import corpus_path

    if corpus == "conll2003":
        lengths, current = [], 0
        for line in (corpus_path(corpus) / "eng.train").read_text().splitlines():
            if line.strip() and not line.startswith("-DOCSTART-"):
                current += 1
            elif current:
                lengths.append(current)
                current = 0
        return lengths + ([current] if current else [])
    if corpus == "sst2":  # "label word word ..."
        lines = (corpus_path(corpus) / "train.txt").read_text().splitlines()
        return [len(line.split()) - 1 for line in lines if line.strip()]
    raise ValueError(f"no lengths for corpus {corpus!r}")




# (label, reference, layer class, keyword arguments, fwd+bwd targets {config letters: ratio}).
# Targets of issue 21: with lengths (d) >= 1.8x torch's packed LSTM; GRU >= 1.5x torch's GRU on
# (a)-(c), >= 1.0x on (d); RNN >= 1.3x; peephole >= 0.95x torch's LSTM on (b), (c); minimal GRU
# >= 2x torch's GRU.
VARIANTS = [
    ("torch LSTM", "torch LSTM", nn.LSTM, {}, None),
    ("LSTM fused", "torch LSTM", LSTM, {"impl": "fused"}, {"abc": 0.95, "def": 1.8}),
    ("LSTM loop", "torch LSTM", LSTM, {"impl": "loop"}, None),
    ("LSTM fused.py", "torch LSTM", LSTM, {"impl": "fused"}, None),
    ("peephole LSTM fused", "torch LSTM", LSTM, {"impl": "fused", "peephole": True}, {"bc": 0.95}),
    ("peephole LSTM Python loops", "torch LSTM", LSTM, {"impl": "fused", "peephole": True}, None),
    ("peephole LSTM loop", "torch LSTM", LSTM, {"impl": "loop", "peephole": True}, None),
    ("torch GRU", "torch GRU", nn.GRU, {}, None),
    ("GRU fused", "torch GRU", GRU, {"impl": "fused"}, {"abc": 1.5, "def": 1.0}),
    ("GRU loop", "torch GRU", GRU, {"impl": "loop"}, None),
    ("GRU Python loops", "torch GRU", GRU, {"impl": "fused"}, None),
    ("minimal GRU fused", "torch GRU", GRU, {"impl": "fused", "variant": "minimal"},
     {"abcdef": 2.0}),
    ("minimal GRU Python loops", "torch GRU", GRU, {"impl": "fused", "variant": "minimal"},
     None),
    ("minimal GRU loop", "torch GRU", GRU, {"impl": "loop", "variant": "minimal"}, None),
    ("torch RNN", "torch RNN", nn.RNN, {}, None),
    ("RNN fused", "torch RNN", RNN, {"impl": "fused"}, {"abcdef": 1.3}),
    ("RNN loop", "torch RNN", RNN, {"impl": "loop"}, None),
    ("RNN Python loops", "torch RNN", RNN, {"impl": "fused"}, None),
]


def config_shape(key: str) -> tuple[int, int, int, int, int]:
    """(batch, steps, layers, hidden, input) of configuration `key`: the shapes other scripts
    time one layer at."""
    cfg = next(c for c in CONFIGS if c.key == key)
    return cfg.batch, cfg.steps, cfg.layers, cfg.hidden, cfg.input


def gate_count(cls: type, kwargs: dict) -> int:
    if cls in (LSTM, nn.LSTM):
        return 4
    if cls in (GRU, nn.GRU):
        return 2 if kwargs.get("variant") == "minimal" else 3
    return 1


def flops_per_token(cfg: Config, gates: int, backward: bool) -> float:
    """Matrix-product FLOPs per real token: forward 2*G*H*(I_l + H) per layer and direction;
    the backward's two products (inputs and weights) double that again."""
    directions = 2 if cfg.bidirectional else 1
    total = 0.0
    for layer in range(cfg.layers):
        layer_input = cfg.input if layer == 0 else directions * cfg.hidden
        total += directions * 2 * gates * cfg.hidden * (layer_input + cfg.hidden)
    return total * (3 if backward else 1)


def gemm_rate(clock: Clock, size: int = 512, calls: int = 20, device: str = "cpu") -> float:
    """The machine's float32 matrix-product rate (FLOP/s) by torch.mm, in this run's conditions."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    torch.mm(a, b)
    return 2 * size ** 3 / timed_block(lambda: torch.mm(a, b), calls, clock)


def onednn_gemm_rate(clock: Clock, size: int = 512, calls: int = 20) -> float | None:
    """The same by oneDNN's linear (torch.ops.mkldnn), on CPUs where torch has it: on AMD's Zen
    with AVX-512, torch.mm's MKL runs an AVX2 kernel at half this rate, so torch.mm alone
    understates what the machine's matrix products reach."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                            "_linear_pointwise")):
        return None
    a, b = torch.randn(size, size), torch.randn(size, size)
    linear = torch.ops.mkldnn._linear_pointwise
    linear(a, b, None, "none", [], "")
    return 2 * size ** 3 / timed_block(lambda: linear(a, b, None, "none", [], ""), calls, clock)


def make_runner(label: str, cls: type, kwargs: dict, cfg: Config, x: Tensor,
                lengths: Tensor | None) -> tuple[Callable[[], Tensor], list[Tensor]]:
    """A call that returns the layer's output (T, B, D*H), and the tensors that get gradients."""
    torch.manual_seed(0)
    model = cls(cfg.input, cfg.hidden, cfg.layers, bidirectional=cfg.bidirectional, **kwargs)
    model = model.to(x.device)
    steps = x.shape[0]
    if label.startswith("torch"):
        def run() -> Tensor:
            if lengths is None:
                return model(x)[0]
            packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
            return pad_packed_sequence(model(packed)[0], total_length=steps)[0]
    elif label.endswith("fused.py"):
        # The layers send standard cells to torch's kernels; this runs rnnlab.nn.fused instead,
        # through the layer's own stacking (private methods: a benchmark-only shortcut).
        mask_lengths = None if lengths is None or bool((lengths == steps).all()) else lengths

        def run() -> Tensor:
            states = model._check_state(None, x)
            return model._stack(x, states, mask_lengths, model._run_fused)[0]
    elif label.endswith("Python loops"):
        # the fallback where the loops cannot be compiled: what the layer runs then (the backward
        # follows its forward's path)
        def run() -> Tensor:
            with native.use_native(False):
                return model(x, lengths=lengths)[0]
    else:
        def run() -> Tensor:
            return model(x, lengths=lengths)[0]
    return run, [*model.parameters(), x]


def bench_config(cfg: Config, repeats: int, quick: bool, budget: float,
                 block_seconds: float = BLOCK_SECONDS, clock: Clock = CLOCKS["wall"],
                 variants: list | None = None, device: str = "cpu") -> list[dict]:
    """Rows for one configuration; stops after `budget` seconds (at least one round). Lengths
    stay on the CPU on every device, as pack_padded_sequence wants them."""
    variants = VARIANTS if variants is None else variants
    started = time.perf_counter()
    torch.manual_seed(0)
    lengths = None
    if cfg.corpus:  # a real batch: B sentences drawn at random from the training file
        pool = torch.tensor(corpus_lengths(cfg.corpus))
        lengths = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))
                       [:cfg.batch]]
        cfg = replace(cfg, steps=int(lengths.max()))
    x = torch.randn(cfg.steps, cfg.batch, cfg.input, device=device,
                    requires_grad=True)  # (T, B, I)
    if cfg.lengths and lengths is None:
        lengths = torch.randint(cfg.steps // 4, cfg.steps + 1, (cfg.batch,))
        lengths[0] = cfg.steps
    directions = 2 if cfg.bidirectional else 1
    projection = torch.randn(cfg.steps, cfg.batch, directions * cfg.hidden,
                             device=device)  # (T, B, D*H)

    calls = {}
    for label, _, cls, kwargs, _ in variants:
        run, grads = make_runner(label, cls, kwargs, cfg, x, lengths)

        def forward(run=run) -> None:
            with torch.no_grad():
                run()

        def forward_backward(run=run, grads=grads) -> None:
            (run() * projection).sum().backward()
            for t in grads:
                t.grad = None

        calls[label] = {"fwd": forward, "fwd+bwd": forward_backward}

    # Warm up every call once, then size the blocks on the slowest reference.
    per_call = {}
    for label, fns in calls.items():
        for mode, fn in fns.items():
            per_call[label, mode] = timed_block(fn, 1, clock)
    block = {}
    for mode in ("fwd", "fwd+bwd"):
        slowest_ref = max(per_call[v[1], mode] for v in variants)
        block[mode] = 1 if quick else max(1, round(block_seconds / slowest_ref))

    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in per_call}
    ratios: dict[tuple[str, str], list[float]] = {key: [] for key in per_call}
    rounds = 0
    while rounds < repeats and (rounds == 0 or time.perf_counter() - started < budget):
        for label, reference, *_ in variants:
            for mode in ("fwd", "fwd+bwd"):
                if label == reference:
                    ref_time = mine_time = timed_block(calls[label][mode], block[mode], clock)
                else:
                    ref_time, mine_time = paired_block(calls[reference][mode],
                                                       calls[label][mode], block[mode], clock)
                seconds[label, mode].append(mine_time)
                ratios[label, mode].append(ref_time / mine_time)
        rounds += 1

    size = 4096 if device == "cuda" else 512  # a 512 product is too small to fill a GPU
    gemm = statistics.median([gemm_rate(clock, size, device=device) for _ in range(3)])
    onednn = [onednn_gemm_rate(clock) for _ in range(3)] if device == "cpu" else [None]
    best_gemm = max(gemm, statistics.median(onednn)) if None not in onednn else gemm
    tokens = cfg.batch * cfg.steps
    real_tokens = tokens if lengths is None else int(lengths.sum())
    rows = []
    for label, reference, cls, kwargs, targets in variants:
        row = {"config": cfg.name, "model": label, "reference": reference, "rounds": rounds,
               "gemm GFLOP/s": gemm / 1e9, "best gemm GFLOP/s": best_gemm / 1e9}
        for mode in ("fwd", "fwd+bwd"):
            median = statistics.median(seconds[label, mode])
            row[f"{mode} tok/s"] = tokens / median
            row[f"{mode} ratio"] = statistics.median(ratios[label, mode])
            flops = flops_per_token(cfg, gate_count(cls, kwargs), mode == "fwd+bwd")
            row[f"{mode} gemm share"] = flops * real_tokens / median / gemm
            row[f"{mode} best gemm share"] = flops * real_tokens / median / best_gemm
        row["target"] = next((value for keys, value in (targets or {}).items()
                              if cfg.key in keys), None)
        rows.append(row)
    return rows


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def verdict(row: dict) -> str:
    if row["target"] is None:
        return ""
    met = "met" if row["fwd+bwd ratio"] >= row["target"] else "MISSED"
    return f">= {row['target']:.2f} ({met})"


def markdown_table(results: dict) -> str:
    before, after = results["loadavg_before"], results["loadavg_after"]
    lines = [
        "# Recurrent layer speed (ratio to torch.nn, same run)", "",
        f"Command: `{results['command']}`  ",
        f"torch {results['torch']}, rnnlab {results['rnnlab']}, {results['threads']} threads, "
        f"CPU {results['cpu']}, device {results.get('device', 'cpu')}, "
        f"{results.get('clock', 'wall')} clock"
        + (", malloc's thresholds raised as in `rnnlab train`" if results.get("keep_freed_memory")
           else ", malloc's defaults") + "  ",
        f"Load average (1, 5, 15 min) before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}; "
        f"after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}  ",
        f"Up to {results['repeats']} rounds (column `rounds`: as many as the time budget "
        "allowed); in each round every model is timed paired with its reference, the two "
        "alternating call by call; ratio = median over rounds of (reference time / model time); "
        "tok/s = B*T per second (median). Forward under no_grad; fwd+bwd as in training.", "",
        "GEMM share = matrix-product FLOPs of the real (unpadded) tokens per second / the "
        "float32 `torch.mm` rate (512x512; 4096x4096 on a GPU) measured in the same run, per "
        "configuration. Best-GEMM share: the same over the faster of torch.mm and oneDNN's "
        "linear (512x512, CPU), which on CPUs where torch.mm runs a slower kernel than oneDNN "
        "(AMD's Zen with AVX-512) is the nearer measure of the machine's limit.", "",
        "| config | model | rounds | fwd tok/s | fwd ratio | fwd GEMM share | fwd+bwd tok/s | "
        "fwd+bwd ratio | fwd+bwd GEMM share | fwd+bwd best-GEMM share | target (fwd+bwd) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in results["rows"]:
        best = row.get("fwd+bwd best gemm share")
        lines.append(
            f"| {row['config']} | {row['model']} | {row['rounds']} | {row['fwd tok/s']:.0f} | "
            f"{row['fwd ratio']:.2f} | {row['fwd gemm share']:.0%} | "
            f"{row['fwd+bwd tok/s']:.0f} | {row['fwd+bwd ratio']:.2f} | "
            f"{row['fwd+bwd gemm share']:.0%} | {'-' if best is None else f'{best:.0%}'} | "
            f"{verdict(row)} |"
        )
    return "\n".join(lines) + "\n"


def chosen_variants(parser: argparse.ArgumentParser, labels: list[str] | None) -> list:
    """The rows `--models` names, with the references they are timed against, in table order."""
    if not labels:
        return VARIANTS
    known = {v[0] for v in VARIANTS}
    unknown = [label for label in labels if label not in known]
    if unknown:
        parser.error(f"unknown --models {', '.join(map(repr, unknown))}; known: "
                     f"{', '.join(sorted(known))}")
    wanted = set(labels) | {v[1] for v in VARIANTS if v[0] in labels}
    return [v for v in VARIANTS if v[0] in wanted]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny sizes, one round, one call per model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (at most)")
    parser.add_argument("--budget", type=float, default=480.0,
                        help="seconds for the whole run; a configuration stops its rounds when "
                             "its share is spent (a busy machine gets fewer rounds, not hours)")
    parser.add_argument("--configs", default="abcdef",
                        help="which configurations to run, by letter (default: all; e and f "
                             "need the conll2003 and sst2 data)")
    parser.add_argument("--block-seconds", type=float, default=BLOCK_SECONDS,
                        help="length of each timed block; longer blocks average out a busy "
                             "machine's interruptions")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: the layers on the GPU against torch.nn there (cuDNN), wall "
                             "clock after a synchronize, TF32 off in both, the C++ loops unused")
    parser.add_argument("--models", nargs="+", metavar="LABEL",
                        help="time only these rows, by their label (e.g. 'GRU fused'), with "
                             "their references (default: every row)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="raise malloc's thresholds first, as `rnnlab train` does "
                             "(training/allocator.py): torch.nn's kernels then stop faulting "
                             "fresh pages in for their large buffers (oneDNN's LSTM most), "
                             "as with jemalloc/tcmalloc preloaded")
    add_clock_argument(parser)
    parser.add_argument("--output", help="path without suffix for the .json and .md "
                                         "(default benchmarks/results/recurrent_speed)")
    args = parser.parse_args()
    clock = clock_from_args(parser, args)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda: torch sees no CUDA device here")
        if args.clock != "wall":
            parser.error("--device cuda times by the wall clock (after a synchronize)")
        clock = cuda_clock
        # float32 as on the CPU: cuDNN's RNNs would otherwise use TF32 and torch's matmul not
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_freed_memory and not keep_freed_memory():
        parser.error("--keep-freed-memory: malloc's thresholds could not be set here (not "
                     "glibc, or already tuned by the environment)")
    repeats = 1 if args.quick else args.repeats
    load_before = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {load_before}", flush=True)
    if torch.get_num_threads() > 1 and load_before[0] + torch.get_num_threads() > cpu_count():
        print(f"warning: {cpu_count()} CPUs, load {load_before[0]:.1f}: threads will wait on each "
              "other and timings swing wildly; compare ratios with --threads 1", flush=True)
    results = {
        "command": " ".join(["python", *sys.argv]), "torch": torch.__version__,
        "rnnlab": rnnlab.__version__, "threads": torch.get_num_threads(), "cpu": cpu_model(),
        "python": platform.python_version(), "repeats": repeats, "loadavg_before": load_before,
        "block_seconds": args.block_seconds, "clock": args.clock, "rows": [],
        "keep_freed_memory": args.keep_freed_memory,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
    }
    configs = [c for c in CONFIGS if c.key in args.configs]
    variants = chosen_variants(parser, args.models)
    if args.quick:
        configs = [replace(c, steps=min(c.steps, 8), hidden=32, input=16) for c in configs]
    results["configs"] = [asdict(c) for c in configs]
    for cfg in configs:
        for row in bench_config(cfg, repeats, args.quick, args.budget / len(configs),
                                args.block_seconds, clock, variants, args.device):
            results["rows"].append(row)
            print(f"{row['config']:34s} {row['model']:20s} fwd {row['fwd ratio']:5.2f}x  "
                  f"fwd+bwd {row['fwd+bwd ratio']:5.2f}x {row['fwd+bwd tok/s']:9.0f} tok/s "
                  f"{row['fwd+bwd gemm share']:4.0%} of GEMM "
                  f"({row['fwd+bwd best gemm share']:4.0%} of the best)  {verdict(row)}",
                  flush=True)
    results["loadavg_after"] = os.getloadavg()
    print(f"load average {results['loadavg_after']}", flush=True)
    stem = Path(args.output or RESULTS / ("recurrent_speed_quick" if args.quick
                                            else "recurrent_speed"))  # quick keeps the full table
    save_record(stem.resolve(), results, markdown_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
