"""Inference with a trained translation model: reference likelihood and decoding of id lists
in length-sorted batches (training's dev scores, and `TranslateRun`)."""

from __future__ import annotations

from typing import Any

from rnnlab.data.buckets import bucket_batches, pad_batch
from rnnlab.tasks.translate.data import ParallelData, Split, make_batch
from rnnlab.tasks.translate.translator import Translator

EVAL_BATCH = 128  # sentences per batch when scoring or decoding (no gradients: memory is small)


def corpus_nll(model: Translator, split: Split, data: ParallelData) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the references given the sources, and the
    number of target tokens (each sentence's <eos> included): plain cross-entropy, no smoothing."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for indices in bucket_batches([len(s) for s in split.src], EVAL_BATCH, shuffle=False):
        batch = make_batch([split.src[i] for i in indices], [split.tgt[i] for i in indices],
                           data.tgt_vocab).to(device)
        loss, tokens = model.loss(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out,
                                  label_smoothing=0.0)
        total += float(loss) * tokens
        count += tokens
    return total, count


def translate_ids(model: Translator, sources: list[list[int]], data: ParallelData, *,
                  beam: int = 1, alpha: float = 0.0, batch_size: int = EVAL_BATCH,
                  n_best: int = 1) -> list:
    """Hypotheses for source id lists, in input order (decoded in length-sorted batches)."""
    device = next(model.parameters()).device
    config, vocab = model.config, data.tgt_vocab
    results: list = [None] * len(sources)
    for indices in bucket_batches([len(s) for s in sources], batch_size, shuffle=False):
        src, lengths = pad_batch([sources[i] for i in indices], vocab.pad_id)
        hypotheses = model.translate(src.to(device), lengths, vocab.bos_id, vocab.eos_id,
                                     beam=beam, alpha=alpha, max_len_ratio=config.max_len_ratio,
                                     max_len_extra=config.max_len_extra, n_best=n_best)
        for i, hypothesis in zip(indices, hypotheses, strict=True):
            results[i] = hypothesis
    return results


def detokenize(hypothesis: Any, data: ParallelData) -> str:
    return data.tgt_tokenizer.detokenize(data.tgt_vocab.decode(hypothesis.tokens))
