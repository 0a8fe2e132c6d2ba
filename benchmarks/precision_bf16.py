"""bf16 autocast against fp32 on this CPU: training speed and dev quality at the same step budget.

Two tasks, each trained twice from the same initial weights (same seed), once per precision:
  * the character LSTM LM of the README (`shakespeare-char` preset: 2x256 LSTM on Tiny
    Shakespeare, AdamW, batch 32 x 64 characters);
  * the UPOS tagger (UD English-EWT, the tagger's defaults: word + char BiLSTM, softmax).
The two Trainers step in turn, ABBA (fp32, bf16, bf16, fp32, ...), over the same batches with the
same dropout masks (each keeps its own copy of torch's RNG), each step being the Trainer's own
`_train_step` (autocast forward, backward, clipping, optimizer step: what `fit` runs). Time is
the process's CPU time (one thread), so another process taking turns on the core is left out.
After the budget each model is evaluated on the dev split in float32 (as the Trainer does).

Usage: python benchmarks/precision_bf16.py [--lm-steps 150] [--tag-steps 400] [--output NAME]
Writes benchmarks/results/precision_bf16.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rnnlab.tasks.lm.presets import preset_configs
from rnnlab.training.config import TrainConfig
from rnnlab.training.lock import release_run_lock
from rnnlab.training.trainer import Trainer, TrainTask

torch.set_num_threads(1)  # before `records` notes the threads: CPU time needs one thread
sys.path.insert(0, str(Path(__file__).resolve().parent))
import records  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def lm_task(train_config: TrainConfig) -> Callable[[], TrainTask]:
    from rnnlab.data.lm_corpus import load_lm_corpus
    from rnnlab.tasks.lm.model import build_lm
    from rnnlab.tasks.lm.train import LMTask

    config, _ = preset_configs("shakespeare-char")
    corpus = load_lm_corpus(config, None)

    def make() -> TrainTask:
        torch.manual_seed(train_config.seed)
        model = build_lm(len(corpus.vocab), config)
        return LMTask(model, corpus.train, corpus.valid, config, train_config.seed, True)

    return make


def tag_task(train_config: TrainConfig) -> Callable[[], TrainTask]:
    from rnnlab.tasks.tag.config import TagConfig
    from rnnlab.tasks.tag.data import load_tag_data
    from rnnlab.tasks.tag.encode import TagVocab
    from rnnlab.tasks.tag.model import build_model
    from rnnlab.tasks.tag.train import TagTask

    config = TagConfig(corpus="ud-english-ewt", field="upos")
    data = load_tag_data(config, None, None)
    vocab = TagVocab.build(data.train, config.min_freq, config.lowercase, config.zero_digits)

    def make() -> TrainTask:
        torch.manual_seed(train_config.seed)
        model = build_model(config, vocab, data.scheme, None)
        return TagTask(model, vocab, data, config, train_config.seed)

    return make


def paired_training(make_task: Callable[[], TrainTask], base: TrainConfig, steps: int,
                    workdir: Path) -> dict[str, Any]:
    """Train one model per precision for `steps` steps, in turn; CPU seconds per step, the
    training loss of the last steps, and the dev metrics after the budget."""
    trainers, seconds, losses, items = {}, {}, {}, {}
    for precision in PRECISIONS:
        run_dir = workdir / precision
        run_dir.mkdir(parents=True)
        config = TrainConfig(**{**vars(base), "precision": precision})
        trainer = trainers[precision] = Trainer(make_task(), config, run_dir,
                                                show_progress=False)
        trainer.task.start_epoch(0)
        trainer.schedule.start_epoch(trainer.optimizer, 0)
        seconds[precision], losses[precision], items[precision] = [], [], 0
    torch.manual_seed(base.seed)  # both copies of the RNG start from the same state
    rng = {precision: torch.get_rng_state() for precision in PRECISIONS}
    batches = trainers["fp32"].task.batches(0)
    if len(batches) < steps:
        raise SystemExit(f"only {len(batches)} batches in an epoch, fewer than {steps} steps")
    for step in range(steps):
        order = PRECISIONS if step % 2 == 0 else PRECISIONS[::-1]  # ABBA
        for precision in order:
            torch.set_rng_state(rng[precision])
            start = time.process_time()
            loss, counted = trainers[precision]._train_step(batches[step])
            seconds[precision].append(time.process_time() - start)
            rng[precision] = torch.get_rng_state()
            losses[precision].append(loss)
            items[precision] += counted
    result: dict[str, Any] = {"steps": steps}
    for precision, trainer in trainers.items():
        trainer.model.eval()
        start = time.process_time()
        with torch.no_grad():
            dev = trainer.task.evaluate()
        release_run_lock(trainer.run_dir)
        spent = seconds[precision][1:]  # the first step warms up
        result[precision] = {
            "cpu_seconds_per_step_median": statistics.median(spent),
            "cpu_seconds_training": round(sum(seconds[precision]), 2),
            "items_per_cpu_second": items[precision] / sum(seconds[precision]),
            "train_loss_last_10": statistics.mean(losses[precision][-10:]),
            "dev": dev, "dev_cpu_seconds": round(time.process_time() - start, 2),
        }
    result["bf16_speed_vs_fp32"] = (result["fp32"]["cpu_seconds_per_step_median"]
                                    / result["bf16"]["cpu_seconds_per_step_median"])
    result["per_step_ratios_median"] = statistics.median(
        f / b for f, b in zip(seconds["fp32"][1:], seconds["bf16"][1:], strict=True))
    return result


def markdown(results: dict[str, dict[str, Any]], env: dict[str, Any]) -> str:
    lines = ["# bf16 autocast vs fp32 on this CPU", "",
             f"CPU bf16 support (oneDNN): {env['mkldnn_bf16']}; "
             f"CPU capability: {env['cpu_capability']}.", "",
             "| task | steps | fp32 items/CPU-s | bf16 items/CPU-s | bf16 speed vs fp32 "
             "(median per-step ratio) | fp32 dev | bf16 dev | fp32 / bf16 train loss "
             "(last 10 steps) |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        metric = r["metric"]
        lines.append(
            f"| {name} | {r['steps']} | {r['fp32']['items_per_cpu_second']:.0f} | "
            f"{r['bf16']['items_per_cpu_second']:.0f} | {r['bf16_speed_vs_fp32']:.2f}x "
            f"({r['per_step_ratios_median']:.2f}x) | {metric} {r['fp32']['dev'][metric]:.4f} | "
            f"{metric} {r['bf16']['dev'][metric]:.4f} | {r['fp32']['train_loss_last_10']:.4f}"
            f" / {r['bf16']['train_loss_last_10']:.4f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-steps", type=int, default=150)
    parser.add_argument("--tag-steps", type=int, default=400)
    parser.add_argument("--tasks", default="lm,tag", help="comma-separated: lm, tag")
    parser.add_argument("--output", default="precision_bf16")
    args = parser.parse_args()
    _, lm_train = preset_configs("shakespeare-char")
    setups = {
        "lm": ("char LSTM LM (shakespeare-char, 2x256)", lm_task, lm_train, args.lm_steps),
        "tag": ("UPOS tagger (UD English-EWT, defaults)", tag_task,
                TrainConfig(seed=1234), args.tag_steps),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.tasks.split(","):
            title, make_factory, train_config, steps = setups[key]
            make = make_factory(train_config)
            result = paired_training(make, train_config, steps, Path(tmp) / key)
            result["metric"] = make().metric
            results[title] = result
            print(title, {p: result[p]["dev"] for p in PRECISIONS},
                  f"bf16 speed {result['bf16_speed_vs_fp32']:.2f}x", flush=True)
    extra = {"mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
             "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    records.save_record(args.output, {"tasks": results, **extra}, markdown(results, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
