"""A trained translation model read back from its run directory: translate lines, evaluate."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnlab.data.vocab import Vocab
from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.metrics import signature
from rnnlab.tasks.translate.build import build_model
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.data import ParallelData, SentenceTokenizer, load_parallel
from rnnlab.tasks.translate.predict import corpus_nll, detokenize, translate_ids


@dataclass
class Translation:
    source: str
    text: str  # detokenized, lower-cased (the tokenizers lower-case)
    source_tokens: list[str]  # as the encoder read them, closing <eos> included
    target_tokens: list[str]  # as the decoder wrote them, closing <eos> included
    weights: Tensor | None  # (len(target_tokens), len(source_tokens)), None without attention
    score: float  # log p(target_tokens | source), natural log, closing <eos> included
    alternatives: list[tuple[str, float]]  # with n_best > 1: the runners-up (text, score)
    # conv/transformer: the chosen layer's cross-attention of every head, (heads, T, S);
    # `weights` is then their mean
    head_weights: Tensor | None = None


class TranslateRun:
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        from rnnlab.tasks.registry import load_run

        self.run_dir = Path(run_dir)
        self.saved = load_run(self.run_dir, task="translate")
        self.info: dict[str, Any] = dict(self.saved.record)
        self.config: TranslateConfig = self.saved.config
        self.src_vocab = Vocab.load(self.saved.file("src_vocab.json"))
        self.tgt_vocab = Vocab.load(self.saved.file("tgt_vocab.json"))
        self.src_tokenizer = SentenceTokenizer.from_json(self.saved.extra["src_tokenizer"])
        self.tgt_tokenizer = SentenceTokenizer.from_json(self.saved.extra["tgt_tokenizer"])
        self.device = resolve_device(device)
        self.model = self.saved.load_model(
            build_model(len(self.src_vocab), len(self.tgt_vocab), self.config,
                        pad_id=self.tgt_vocab.pad_id), self.device)

    def _model_name(self) -> str:
        return "seq2seq" if self.config.model == "rnn" else self.config.model

    def _data(self, splits: tuple[str, ...] = (), data_dir: str | None = None) -> ParallelData:
        saved = (self.src_tokenizer, self.tgt_tokenizer, self.src_vocab, self.tgt_vocab)
        if not splits:
            return ParallelData("input", *saved, splits={})
        return load_parallel(self.config, data_dir, splits=splits, saved=saved)

    def _beam(self, beam: int | None, alpha: float | None) -> tuple[int, float]:
        beam = self.config.beam if beam is None else beam
        if beam < 1:
            raise RnnlabError(f"--beam must be >= 1, got {beam}")
        return beam, self.config.alpha if alpha is None else alpha

    def translate(self, lines: list[str], beam: int | None = None, alpha: float | None = None,
                  attention_layer: int | None = None, n_best: int = 1) -> list[Translation]:
        """One translation per line (beam 1: greedy), with each output token's attention (conv,
        transformer: the last layer's, heads averaged) and, with n_best > 1, the next best
        translations of the beam. With `attention_layer` (1-based) the attention is that
        layer's instead, each head (`head_weights`) and their mean."""
        beam, alpha = self._beam(beam, alpha)
        if not 1 <= n_best <= beam:
            raise RnnlabError(f"n_best must be between 1 and the beam ({beam}), got {n_best}")
        data = self._data()
        tokens = [[*self.src_tokenizer.encode(line), "<eos>"] for line in lines]
        ids = [self.src_vocab.encode(t) for t in tokens]
        hypotheses = translate_ids(self.model, ids, data, beam=beam, alpha=alpha, n_best=n_best)
        results = []
        for line, src_ids, src_tokens, hyp in zip(lines, ids, tokens, hypotheses, strict=True):
            weights = None if hyp.weights is None else hyp.weights[:, : len(src_tokens)]
            heads = None
            if attention_layer is not None and hasattr(self.model, "cross_attention"):
                heads = self._cross_attention(src_ids, hyp.tokens, attention_layer)
                weights = heads.mean(dim=0)  # (T, S)
            results.append(Translation(line, detokenize(hyp, data), src_tokens,
                                       [*self.tgt_vocab.decode(hyp.tokens), "<eos>"], weights,
                                       hyp.score, [(detokenize(other, data), other.score)
                                                   for other in hyp.alternatives],
                                       head_weights=heads))
        return results

    def _cross_attention(self, src_ids: list[int], output: list[int], layer: int) -> Tensor:
        """(heads, T, S): one layer's attention while reading back the output it produced (a
        teacher-forced pass over <bos> + output, equal to the steps that wrote it; tested)."""
        layers = self.config.layers
        if not 1 <= layer <= layers:
            raise RnnlabError(f"--attention-layer must be in 1..{layers}, got {layer}")
        src = torch.tensor([src_ids], device=self.device)
        tgt_in = torch.tensor([[self.tgt_vocab.bos_id, *output]], device=self.device)
        lengths = torch.tensor([len(src_ids)])
        return self.model.cross_attention(src, lengths, tgt_in)[layer - 1, 0].cpu()

    def evaluate(self, split: str | None = None, beam: int | None = None,
                 alpha: float | None = None, data_dir: str | None = None,
                 limit: int = 0) -> dict[str, Any]:
        """BLEU and chrF (sacrebleu, lower-cased detokenized output against the raw references,
        lower-cased too) of beam search, the perplexity of the references, and the speed, on
        `split` (default: the last split the run's data has: test, else valid)."""
        from rnnlab.metrics import bleu_chrf

        beam, alpha = self._beam(beam, alpha)
        if split is None:
            data = self._data(("valid", "test"), data_dir)
            split = "test" if "test" in data.splits else "valid"
        else:
            data = self._data((split,), data_dir)
        if split not in data.splits:
            raise RnnlabError(f"this run has no {split} split (give --src-{split}/--tgt-{split} "
                              "when training)")
        part = data.splits[split]
        n = limit or len(part.src)
        with torch.no_grad():
            nll, tokens = corpus_nll(self.model, part, data)
            started = time.perf_counter()
            hypotheses = translate_ids(self.model, part.src[:n], data, beam=beam, alpha=alpha)
            seconds = time.perf_counter() - started
        text = [detokenize(h, data) for h in hypotheses]
        scores = bleu_chrf(text, part.tgt_text[:n], lowercase=True)
        tok = f"subword{self.config.subwords}" if self.config.subwords else "word"
        return {
            "split": split, "sentences": n, "beam": beam, "alpha": alpha, **scores,
            "ppl": math.exp(min(nll / tokens, 700.0)), "tokens": tokens,
            "ppl_signature": signature(metric="ppl", corpus=data.name, split=split, tok=tok,
                                       vocab=len(self.tgt_vocab), model=self._model_name()),
            "sentences_per_second": n / seconds, "hypotheses": text,
        }
