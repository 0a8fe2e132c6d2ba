"""Fitting an n-gram model into a run directory that `sample`, `score` and `eval` can read."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rnnlab.data.lm_corpus import LMDataConfig
from rnnlab.errors import RnnlabError
from rnnlab.tasks.ngram import NGramConfig, NGramModel
from rnnlab.training import distributed
from rnnlab.training.checkpoint import CONFIG_FILE
from rnnlab.training.lock import release_run_lock
from rnnlab.training.run_dir import absolute_files, write_run_info

# The fewest valid tokens a reported perplexity may rest on: one token is only context (and
# gave "perplexity 1.0000"); a handful gives a number that means nothing.
MIN_EVAL_TOKENS = 10


def train_ngram(data: LMDataConfig, config: NGramConfig, run_dir: Path, *,
                data_dir: str | None = None, resume: bool = False,
                show_progress: bool = True) -> dict[str, Any]:
    """Count the model in one pass (so nothing to resume and no progress to show) and score
    the valid split."""
    from rnnlab.data.lm_corpus import load_lm_corpus

    if resume:
        raise RnnlabError("an n-gram model trains in one pass: --resume does not apply")
    if distributed.is_distributed():
        raise RnnlabError("an n-gram model is counted in one pass by one process: run it "
                          "without torchrun")
    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        raise RnnlabError(f"{run_dir} already holds a run; choose another --run-dir")
    data = absolute_files(data)
    corpus = load_lm_corpus(data, data_dir)
    if len(corpus.valid) < MIN_EVAL_TOKENS:  # the first token is context only: nothing scored
        raise RnnlabError(f"the valid split has {len(corpus.valid)} token(s): at least "
                          f"{MIN_EVAL_TOKENS} are needed for a perplexity worth reporting")
    started = time.monotonic()
    model = NGramModel.fit(corpus.train, len(corpus.vocab), config)
    fit_seconds = time.monotonic() - started
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir)
    corpus.vocab.save(run_dir / "vocab.json")
    write_run_info(run_dir, "ngram", data, None, sections={"ngram": config}, checkpoints=False,
                   tokenizer=corpus.tokenizer.to_json(), corpus=corpus.name,
                   data_notes=corpus.notes)
    release_run_lock(run_dir)  # written in one pass: nothing more to guard
    scores = model.score_stream(corpus.valid)
    loss = -float(scores[1:].sum()) / max(len(scores) - 1, 1)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "notes": corpus.notes,
                               "order": config.order, "smoothing": config.smoothing,
                               "fit_seconds": round(fit_seconds, 2), "valid_loss": loss,
                               "valid_ppl": math.exp(min(loss, 700.0))}
    if corpus.tokenizer.name == "char":
        summary["valid_bpc"] = loss / math.log(2)
    return summary
