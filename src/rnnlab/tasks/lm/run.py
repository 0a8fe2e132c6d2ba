"""A trained language model read back from its run directory: neural or n-gram, one interface.

`sample`, `score` and `eval` work the same on both kinds, because both expose
`step(tokens, state)` (for generation) and a log-probability for every token of a stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnlab.data.tokenizers import tokenizer_from_json
from rnnlab.data.vocab import EOS, Vocab
from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.metrics import signature

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SentenceScore:
    text: str
    tokens: list[str]
    log_probs: list[float]  # natural log, one per token (the chain rule's factors)

    @property
    def total(self) -> float:
        return sum(self.log_probs)

    @property
    def perplexity(self) -> float:
        return math.exp(-self.total / max(len(self.log_probs), 1))


class LMRun:
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        from rnnlab.tasks.registry import load_run

        self.run_dir = Path(run_dir)
        self.saved = load_run(self.run_dir, task=("lm", "ngram"))
        self.task = self.saved.task
        self.info: dict[str, Any] = dict(self.saved.record)
        self.config = self.saved.config  # LMConfig (lm) or LMDataConfig (ngram)
        self.vocab = Vocab.load(self.saved.file("vocab.json"))
        self.tokenizer = tokenizer_from_json(self.info["tokenizer"])
        self.device = resolve_device(device)
        if self.task == "lm":
            from rnnlab.tasks.lm.model import build_lm

            self.model = self.saved.load_model(build_lm(len(self.vocab), self.config),
                                               self.device)
        else:
            from rnnlab.tasks.ngram import NGramModel

            self.model = NGramModel.load(self.run_dir)
            self.device = torch.device("cpu")

    @property
    def char_level(self) -> bool:
        return self.tokenizer.name == "char"

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return self.model.step(tokens, state)

    def context_id(self) -> int:
        """The token that means "a text starts here": the newline for character models
        (texts follow line ends in training), `<eos>` for word models (each sentence in the
        training stream follows the previous sentence's `<eos>`)."""
        if self.char_level and "\n" in self.vocab:
            return self.vocab.stoi["\n"]
        return self.vocab.eos_id

    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(self.tokenizer.encode(text))

    def log_probs(self, context_id: int, ids: list[int]) -> list[float]:
        if self.task == "lm":
            from rnnlab.tasks.lm.predict import token_log_probs

            return token_log_probs(self.model, context_id, ids)
        scores = self.model.score_stream([context_id, *ids])
        return [float(s) for s in scores[1:]]

    def score(self, text: str) -> SentenceScore:
        """log p(sentence): for word models the sentence's closing `<eos>` is scored too."""
        tokens = self.tokenizer.encode(text)
        if not self.char_level and (not tokens or tokens[-1] != EOS):
            tokens = [*tokens, EOS]
        if not tokens:
            raise RnnlabError("cannot score an empty text")
        ids = self.vocab.encode(tokens)
        return SentenceScore(text, tokens, self.log_probs(self.context_id(), ids))

    def load_corpus(self, data_dir: str | None = None):  # noqa: ANN201 - LMCorpus
        """The run's corpus, encoded with the run's own vocabulary and tokenizer."""
        from rnnlab.data.lm_corpus import load_lm_corpus

        return load_lm_corpus(self.config, data_dir, vocab=self.vocab, tokenizer=self.tokenizer)

    def evaluate(self, split: str | None = None, data_dir: str | None = None) -> dict[str, Any]:
        """Cross-entropy (nats/token), perplexity and, for characters, bits per character, on
        `split` (default: the last split the corpus has: test, else valid)."""
        if split is not None and split not in SPLITS:
            raise RnnlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        corpus = self.load_corpus(data_dir)
        split = split or list(corpus.splits())[-1]
        ids = getattr(corpus, split)
        if ids is None:
            raise RnnlabError(f"corpus {corpus.name} has no {split} split")
        if self.task == "lm":
            from rnnlab.data.batching import batchify
            from rnnlab.tasks.lm.predict import score_streams

            context = getattr(self.model, "context_length", None)
            if context:  # windows carry no state: many of them in one batch
                from rnnlab.tasks.lm.predict import score_windows

                score = score_windows(self.model, ids.to(self.device), context)
            else:
                score = score_streams(self.model, batchify(ids, 1).to(self.device), 256)
            nll, count = score.nll, score.tokens
        else:
            scores = self.model.score_stream(ids)
            nll, count = -float(scores[1:].sum()), len(scores) - 1
        loss = nll / max(count, 1)
        result = {"split": split, "tokens": count, "loss": loss,
                  "ppl": math.exp(min(loss, 700.0))}
        if self.char_level:
            result["bpc"] = loss / math.log(2)
        result["signature"] = signature(
            metric="ppl", corpus=corpus.name, split=split, tok=self.tokenizer.name,
            vocab=len(self.vocab), model=self.task,
        )
        return result

    def generate(self, prime: str, length: int, *, seed: int | None = None,
                 **options: Any) -> Iterator[str]:
        """Stream the text of one sample, token by token (after the prime, which is not echoed).
        Without a prime the sample starts where training texts start (`context_id`)."""
        from rnnlab.decoding.sampling import sample
        from rnnlab.tasks.lm.compiled_sampling import compiled_sampler

        prime_ids = self.encode(prime) if prime else [self.context_id()]
        if self.tokenizer.name == "word" and prime and prime_ids[-1] == self.vocab.eos_id \
                and not prime.endswith("\n"):
            prime_ids = prime_ids[:-1]  # the word tokenizer closes every line; a prime goes on
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        banned = (self.vocab.pad_id, self.vocab.bos_id)
        # Words are written "word " (space after): the first one needs a space before it when
        # the prime ends inside a word, or the prime "the" and "market" print as "themarket".
        separate = self.tokenizer.name == "word" and bool(prime) and not prime[-1].isspace()
        compiled = compiled_sampler(self.model, top_k=options.get("top_k", 0),
                                    top_p=options.get("top_p", 1.0))
        if compiled is not None:  # the token loop in C++: same draws, several times faster
            options = {k: v for k, v in options.items() if k not in ("top_k", "top_p")}
            stream = compiled.sample(prime_ids, length, banned=banned, generator=generator,
                                     **options)
        else:
            stream = sample(self.step, prime_ids, length, banned=banned, generator=generator,
                            device=self.device, **options)
        for tokens in stream:
            text = self.token_text(int(tokens[0]))
            if separate and not text.startswith(("\n", " ")):
                text = " " + text
            separate = False
            yield text

    def token_text(self, token_id: int) -> str:
        token = self.vocab.itos[token_id]
        if self.char_level:
            return token
        if token == EOS:
            return "\n"
        if self.tokenizer.name == "subword":
            return token.replace("\u2581", " ")
        return token + " "
