"""The end-to-end reference of issue 21: a word LM trained by a plain loop written like
pytorch/examples' word_language_model (batchify, detach the state, clip_grad_norm_, SGD by
hand), on the same data and settings as `rnnlab train lm --preset ptb-small` (2x200 LSTM, batch
20, bptt 35, no dropout, U(-0.1, 0.1) init, SGD lr 35 on the mean loss, clip 5/35).

It logs, like rnnlab's training log, one JSON line every --log-every steps with the process's CPU
seconds (user, system) and the wall clock, so `lm_speed.py --parts loop` compares the two the
same way (steady state, startup left out).

Usage: python benchmarks/lm_plain_loop.py --steps 400 --log FILE [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptb"


class RNNModel(nn.Module):
    def __init__(self, vocab: int, size: int = 200, layers: int = 2) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, size)
        self.rnn = nn.LSTM(size, size, layers)
        self.decoder = nn.Linear(size, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, tokens, hidden):
        output, hidden = self.rnn(self.encoder(tokens), hidden)
        return self.decoder(output), hidden


def tokenize(path: Path, vocab: dict[str, int]) -> torch.Tensor:
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            for word in line.split() + ["<eos>"]:
                ids.append(vocab.setdefault(word, len(vocab)))
    return torch.tensor(ids, dtype=torch.long)


def batchify(data: torch.Tensor, batch: int) -> torch.Tensor:
    columns = data.size(0) // batch
    return data[:columns * batch].view(batch, -1).t().contiguous()  # (N, B)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    vocab: dict[str, int] = {}
    train = batchify(tokenize(args.data / "ptb.train.txt", vocab), 20)
    model = RNNModel(len(vocab))
    lr, clip, bptt = 35.0, 5.0 / 35, 35
    hidden = None
    log = open(args.log, "w")
    model.train()
    step, i = 0, 0
    while step < args.steps:
        if i + 1 >= train.size(0) - 1:
            i, hidden = 0, None
        length = min(bptt, train.size(0) - 1 - i)
        data, targets = train[i:i + length], train[i + 1:i + 1 + length]
        i += length
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden)
        model.zero_grad()
        output, hidden = model(data, hidden)
        loss = F.cross_entropy(output.view(-1, output.size(-1)), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        step += 1
        if step % args.log_every == 0:
            cpu = os.times()
            log.write(json.dumps({"kind": "train", "step": step, "loss": loss.item(),
                                  "time": time.time(), "cpu_user": cpu.user,
                                  "cpu_system": cpu.system}) + "\n")
            log.flush()
    log.close()


if __name__ == "__main__":
    main()
