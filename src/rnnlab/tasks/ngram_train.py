"""Fitting an n-gram model into a run directory that `sample`, `score` and `eval` can read."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from rnnlab import __version__
from rnnlab.config import to_dict
from rnnlab.errors import RnnlabError
from rnnlab.tasks.lm.config import LMDataConfig
from rnnlab.tasks.ngram import NGramConfig, NGramModel
from rnnlab.training.checkpoint import CONFIG_FILE, write_json
from rnnlab.training.run_dir import absolute_files

# The fewest valid tokens a reported perplexity may rest on: one token is only context (and
# gave "perplexity 1.0000"); a handful gives a number that means nothing.
MIN_EVAL_TOKENS = 10


def train_ngram(data: LMDataConfig, config: NGramConfig, run_dir: Path, *,
                data_dir: str | None = None) -> dict[str, Any]:
    from rnnlab.data.lm_corpus import load_lm_corpus

    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        raise RnnlabError(f"{run_dir} already holds a run; choose another --run-dir")
    data = absolute_files(data)
    corpus = load_lm_corpus(
        corpus=None if data.train else data.corpus, train=data.train, valid=data.valid,
        test=data.test, level=data.level, data_dir=data_dir, min_freq=data.min_freq,
        max_vocab=data.max_vocab, subword_vocab_size=data.subword_vocab,
    )
    if len(corpus.valid) < MIN_EVAL_TOKENS:  # the first token is context only: nothing scored
        raise RnnlabError(f"the valid split has {len(corpus.valid)} token(s): at least "
                          f"{MIN_EVAL_TOKENS} are needed for a perplexity worth reporting")
    started = time.monotonic()
    model = NGramModel.fit(corpus.train, len(corpus.vocab), config)
    fit_seconds = time.monotonic() - started
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir)
    corpus.vocab.save(run_dir / "vocab.json")
    write_json(run_dir / CONFIG_FILE, {
        "task": "ngram", "config": to_dict(data), "ngram": to_dict(config),
        "tokenizer": corpus.tokenizer.to_json(), "corpus": corpus.name,
        "data_notes": corpus.notes, "rnnlab": __version__, "torch": torch.__version__,
    })
    scores = model.score_stream(corpus.valid)
    loss = -float(scores[1:].sum()) / max(len(scores) - 1, 1)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "notes": corpus.notes,
                               "order": config.order, "smoothing": config.smoothing,
                               "fit_seconds": round(fit_seconds, 2), "valid_loss": loss,
                               "valid_ppl": math.exp(min(loss, 700.0))}
    if corpus.tokenizer.name == "char":
        summary["valid_bpc"] = loss / math.log(2)
    return summary
