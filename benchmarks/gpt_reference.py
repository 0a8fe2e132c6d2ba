"""A plain GPT training loop, written from the recipe alone with torch.nn (no rnnlab model,
trainer or data code), as the oracle for the `shakespeare-gpt` preset's quality anchor.

The recipe is nanoGPT's CPU run of Tiny Shakespeare: 65 characters, first 90% train and last
10% dev, 4 pre-LN blocks of 128 (4 heads, GELU MLP of 512, no biases, tied embeddings), context
64, batch 12 random windows, AdamW lr 1e-3 (beta2 0.99, weight decay 0.1 on matrices), a
100-step linear warm-up then a cosine to 1e-4 at step 2,000, gradient norm clipped at 1.0,
GPT-2's initialisation. If rnnlab's preset and this loop reach the same dev loss, a gap to
nanoGPT's published 1.88 is seed and estimate noise, not a bug; if not, one of them differs.
(`--nanogpt-order` below shows that this loop is nanoGPT's, to its printed log.)

    python benchmarks/gpt_reference.py --threads 1 --seeds 1337 1

Reports, per seed, the dev loss the two ways `benchmarks/lm_quality.py` reports rnnlab's:
nanoGPT's estimate (mean of 200 random batches of 12 x 64 dev windows) and the whole dev
stream in windows of 64. Writes benchmarks/results/gpt_reference.{json,md}.

`--nanogpt-order` draws everything in nanoGPT's own order instead: its train.py seeds the global
generator (`torch.manual_seed`) before building the model, draws each batch from it with
`torch.randint`, fetches the next batch before the backward, and every 250 steps estimates the
train and dev loss from 20 batches each (`--eval_iters=20`), which draws from the same
generator. With seed 1337, train.py's, the loop then prints nanoGPT's published log line for
line (every `step N: train loss, val loss` line of its CPU run, 4 decimals): it trains the very
same model. Writes benchmarks/results/gpt_reference_nanogpt_order.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import Tensor, nn
from torch.nn import functional as F

import records
from rnnlab.data.registry import corpus_path

WIDTH, HEADS, LAYERS, CONTEXT, BATCH = 128, 4, 4, 64, 12
LR, MIN_LR, WARMUP, STEPS, DECAY, BETA2, CLIP = 1e-3, 1e-4, 100, 2000, 0.1, 0.99, 1.0


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(WIDTH, bias=False)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH, bias=False)
        self.proj = nn.Linear(WIDTH, WIDTH, bias=False)
        self.norm2 = nn.LayerNorm(WIDTH, bias=False)
        self.up = nn.Linear(WIDTH, 4 * WIDTH, bias=False)
        self.down = nn.Linear(4 * WIDTH, WIDTH, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        batch, steps, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(WIDTH, dim=2)
        heads = [t.view(batch, steps, HEADS, WIDTH // HEADS).transpose(1, 2) for t in (q, k, v)]
        attended = F.scaled_dot_product_attention(*heads, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, steps, WIDTH))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class GPT(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, WIDTH)
        self.positions = nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.Sequential(*(Block() for _ in range(LAYERS)))
        self.norm = nn.LayerNorm(WIDTH, bias=False)
        self.head = nn.Linear(WIDTH, vocab, bias=False)
        self.head.weight = self.tokens.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        for block in self.blocks:  # the projections into the residual stream
            for linear in (block.proj, block.down):
                nn.init.normal_(linear.weight, std=0.02 / math.sqrt(2 * LAYERS))

    def forward(self, ids: Tensor, targets: Tensor) -> Tensor:
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        logits = self.head(self.norm(self.blocks(x)))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def windows(data: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    start = torch.randint(len(data) - CONTEXT, (BATCH,), generator=generator)
    rows = torch.stack([data[s : s + CONTEXT + 1] for s in start.tolist()])
    return rows[:, :-1], rows[:, 1:]


def learning_rate(step: int, steps: int) -> float:
    if step < WARMUP:
        return LR * (step + 1) / (WARMUP + 1)
    progress = (step - WARMUP) / (steps - WARMUP)
    return MIN_LR + 0.5 * (1 + math.cos(math.pi * progress)) * (LR - MIN_LR)


@torch.no_grad()
def dev_losses(model: GPT, dev: Tensor, seed: int) -> dict[str, float]:
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    estimate = sum(float(model(*windows(dev, generator))) for _ in range(200)) / 200
    total, count = 0.0, 0
    for start in range(0, len(dev) - 1, CONTEXT):
        piece = dev[start : start + CONTEXT + 1]
        if len(piece) < 2:
            break
        n = len(piece) - 1
        total += float(model(piece[None, :-1], piece[None, 1:])) * n
        count += n
    model.train()
    return {"estimate_200_batches": round(estimate, 4), "whole_stream": round(total / count, 4)}


def seeded_model(seed: int, vocab: int) -> tuple[GPT, list[Tensor], torch.optim.AdamW]:
    """The model built right after seeding the global generator (its initialisation draws from
    it, as nanoGPT's does), its parameters, and AdamW with weight decay on the matrices."""
    torch.manual_seed(seed)
    model = GPT(vocab)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": DECAY},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=LR, betas=(0.9, BETA2))
    return model, params, optimizer


def train(seed: int, steps: int, train_ids: Tensor, dev_ids: Tensor, vocab: int) -> dict:
    model, params, optimizer = seeded_model(seed, vocab)
    generator = torch.Generator().manual_seed(seed)
    started = time.process_time()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        loss = model(*windows(train_ids, generator))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()
    seconds = time.process_time() - started
    return {"seed": seed, "steps": steps, "cpu_seconds_per_step": round(seconds / steps, 4),
            "train_loss_last": round(float(loss.detach()), 4), **dev_losses(model, dev_ids, seed)}


NANOGPT_EVAL_EVERY, NANOGPT_EVAL_BATCHES = 250, 20


def train_nanogpt_order(seed: int, steps: int, train_ids: Tensor, dev_ids: Tensor,
                        vocab: int) -> dict:
    """nanoGPT's train.py loop, draw for draw (see the docstring); returns its eval lines and
    the final model's dev loss measured as `train` measures it."""
    def batch(data: Tensor) -> tuple[Tensor, Tensor]:
        start = torch.randint(len(data) - CONTEXT, (BATCH,))  # the global generator
        rows = torch.stack([data[s : s + CONTEXT + 1] for s in start.tolist()])
        return rows[:, :-1], rows[:, 1:]

    @torch.no_grad()
    def estimate() -> dict[str, float]:
        model.eval()
        splits = {"train": train_ids, "val": dev_ids}
        losses = {split: sum(float(model(*batch(data))) for _ in range(NANOGPT_EVAL_BATCHES))
                  / NANOGPT_EVAL_BATCHES for split, data in splits.items()}
        model.train()
        return losses

    model, params, optimizer = seeded_model(seed, vocab)
    log = []
    ids, targets = batch(train_ids)
    started = time.process_time()
    for step in range(steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        if step % NANOGPT_EVAL_EVERY == 0 or step == steps:
            losses = estimate()
            log.append(f"step {step}: train loss {losses['train']:.4f}, "
                       f"val loss {losses['val']:.4f}")
            print(log[-1], flush=True)
        if step == steps:
            break
        loss = model(ids, targets)
        ids, targets = batch(train_ids)  # fetched before the backward, as train.py does
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    seconds = time.process_time() - started
    return {"seed": seed, "steps": steps, "cpu_seconds_per_step": round(seconds / steps, 4),
            "log": log, "estimate_20_batches_at_end": round(losses["val"], 4),
            **dev_losses(model, dev_ids, seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=STEPS, help="the recipe's 2,000; fewer "
                        "only to try the script (the cosine then ends there)")
    parser.add_argument("--data-dir")
    parser.add_argument("--nanogpt-order", action="store_true",
                        help="draw the batches and evaluate in nanoGPT's train.py order")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = (corpus_path("tinyshakespeare", args.data_dir) / "input.txt").read_text("utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text])
    cut = int(0.9 * len(ids))
    if args.nanogpt_order:
        return nanogpt_order_record(args, ids, cut, len(chars))
    runs = [train(seed, args.steps, ids[:cut], ids[cut:], len(chars)) for seed in args.seeds]
    lines = ["# Plain GPT loop (torch.nn only) on Tiny Shakespeare: the shakespeare-gpt oracle",
             "", f"{len(chars)} characters, {cut:,} train / {len(ids) - cut:,} dev; nanoGPT's "
             f"CPU recipe, {args.steps:,} steps (see the script's docstring).", ""]
    lines += records.table_lines(
        ["seed", "dev loss, 200 random batches", "dev loss, whole stream", "last train batch",
         "CPU s/step"],
        [[r["seed"], r["estimate_200_batches"], r["whole_stream"], r["train_loss_last"],
          r["cpu_seconds_per_step"]] for r in runs])
    records.save_record("gpt_reference", {"runs": runs}, "\n".join(lines))



def nanogpt_order_record(args: argparse.Namespace, ids: Tensor, cut: int, vocab: int) -> None:
    runs = [train_nanogpt_order(seed, args.steps, ids[:cut], ids[cut:], vocab)
            for seed in args.seeds]
    lines = ["# nanoGPT's train.py loop, draw for draw, on Tiny Shakespeare", "",
             f"{vocab} characters, {cut:,} train / {len(ids) - cut:,} dev; nanoGPT's CPU "
             f"recipe, {args.steps:,} steps, batches and evaluations in train.py's order (see "
             "the script's docstring).", ""]
    lines += records.table_lines(
        ["seed", "nanoGPT's reading at the end (20 batches)", "dev loss, 200 random batches",
         "dev loss, whole stream", "CPU s/step"],
        [[r["seed"], r["estimate_20_batches_at_end"], r["estimate_200_batches"],
          r["whole_stream"], r["cpu_seconds_per_step"]] for r in runs])
    for run in runs:
        lines += ["", f"Seed {run['seed']}, the evaluation lines as train.py prints them:", "",
                  "```", *run["log"], "```"]
    records.save_record("gpt_reference_nanogpt_order", {"runs": runs}, "\n".join(lines))


if __name__ == "__main__":
    main()
