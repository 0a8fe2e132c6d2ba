"""The end-to-end reference of issue 21: a language model trained by a plain loop written like
pytorch/examples' word_language_model (batchify, detach the state, clip_grad_norm_), on the same
data and settings as one of rnnlab's presets (`--preset`):

- ptb-small: words of PTB, 2x200 LSTM, batch 20, bptt 35, no dropout, U(-0.1, 0.1) init, SGD by
  hand with lr 35 on the mean loss, clip 5/35;
- shakespeare-char: characters of Tiny Shakespeare (first 90% train), embeddings of 64, 2x256
  LSTM with dropout 0.2 between the layers and on the outputs, batch 32, bptt 64,
  `torch.optim.AdamW(lr=3e-3, weight_decay=0)` as a user writes it, clip 1.0.

It logs, like rnnlab's training log, one JSON line every --log-every steps with the process's CPU
seconds (user, system) and the wall clock, so `lm_speed.py --parts loop` compares the two the
same way (steady state, startup left out).

Usage: python benchmarks/lm_plain_loop.py --steps 400 --log FILE [--threads 1]
       [--preset ptb-small|shakespeare-char]
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

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# preset -> (corpus folder, embedding, hidden, layers, dropout, batch, bptt)
PRESETS = {"ptb-small": ("ptb", 200, 200, 2, 0.0, 20, 35),
           "shakespeare-char": ("tinyshakespeare", 64, 256, 2, 0.2, 32, 64)}


class RNNModel(nn.Module):
    def __init__(self, vocab: int, embed: int, size: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, size, layers, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(size, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, tokens, hidden):
        output, hidden = self.rnn(self.encoder(tokens), hidden)
        return self.decoder(self.drop(output)), hidden


def tokenize(path: Path, vocab: dict[str, int]) -> torch.Tensor:
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            for word in line.split() + ["<eos>"]:
                ids.append(vocab.setdefault(word, len(vocab)))
    return torch.tensor(ids, dtype=torch.long)


def characters(path: Path) -> tuple[torch.Tensor, int]:
    """The first 90% of the text as character ids, and the number of characters."""
    text = path.read_text(encoding="utf-8")
    index = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    return ids[:int(0.9 * len(ids))], len(index)


def batchify(data: torch.Tensor, batch: int) -> torch.Tensor:
    columns = data.size(0) // batch
    return data[:columns * batch].view(batch, -1).t().contiguous()  # (N, B)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="ptb-small")
    parser.add_argument("--data", type=Path, default=DATA, help="the folder of the corpora")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    corpus, embed, size, layers, dropout, batch, bptt = PRESETS[args.preset]
    if args.preset == "ptb-small":
        vocab: dict[str, int] = {}
        train = batchify(tokenize(args.data / corpus / "ptb.train.txt", vocab), batch)
        model = RNNModel(len(vocab), embed, size, layers, dropout)
        lr, clip, optimizer = 35.0, 5.0 / 35, None
    else:
        ids, vocab_size = characters(args.data / corpus / "input.txt")
        train = batchify(ids, batch)
        model = RNNModel(vocab_size, embed, size, layers, dropout)
        clip, optimizer = 1.0, torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
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
        if optimizer is None:
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
        else:
            optimizer.step()
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
