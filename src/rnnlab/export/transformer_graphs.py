"""The graphs of the Transformer models that generate: the GPT language model and the
encoder-decoder translator. (The Transformer classifier and tagger read a whole sentence once:
`graphs.classifier_graphs` and `graphs.tagger_graphs` export them as they export the recurrent
ones.)

A step graph carries the key/value cache as state in and out, as `TransformerLM.step` and
`TransformerSeq2Seq.step` do: every layer's keys and values of the positions read so far,
stacked over the layers, so a client appends one token per call and never re-reads the prefix.
The cache starts empty (P = 0 positions): the graphs accept it, and the translation encoder
returns it.

    keys, values   (L, B, H, P, d)   self-attention cache, P positions read so far
    memory_keys    (L, B, H, S, d)   translation: each decoder layer's keys and values of the
    memory_values                    source, projected once by the encoder graph
    memory_mask    (B, 1, 1, S)      translation: 0 on real source tokens, -inf on padding

Shapes: B batch, T tokens read now, P cached positions, S source tokens, L layers, H heads,
d = width / H, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.errors import RnnlabError
from rnnlab.export.graphs import BATCH, SOURCE, STEPS, GraphSpec, _ids, _lengths
from rnnlab.nn.transformer import Cache

PAST = 4  # cached positions in the examples (above 1 and unlike the other example sizes)


def _cache(keys: Tensor, values: Tensor) -> Cache:
    """Stacked (L, B, H, P, d) tensors -> the layers' cache dicts."""
    return [{"k": k, "v": v} for k, v in zip(keys.unbind(0), values.unbind(0), strict=True)]


def _stacked(cache: Cache) -> tuple[Tensor, Tensor]:
    return torch.stack([c["k"] for c in cache]), torch.stack([c["v"] for c in cache])


def _random_cache(layers: int, heads: int, head_dim: int, batch: int, past: int
                  ) -> tuple[Tensor, Tensor]:
    shape = (layers, batch, heads, past, head_dim)
    return torch.randn(shape), torch.randn(shape)


def _heads(stack: nn.Module) -> tuple[int, int, int]:
    """(layers, heads, head_dim) of a Transformer stack."""
    attention = stack.layers[0].self_attn
    return len(stack.layers), attention.num_heads, attention.head_dim


# -- the GPT language model -------------------------------------------------------------------


class GPTStepGraph(nn.Module):
    """tokens (B, T), keys, values (L, B, H, P, d) -> logits (B, V) of the last token, and the
    cache with the T new positions (L, B, H, P + T, d).

    One graph for both phases of sampling: the prompt (T tokens, empty cache) and each new
    token (T = 1). Positions are P .. P + T - 1, so P + T may not pass the block size; past it
    a client restarts from an empty cache with the last `block_size` tokens, as
    `TransformerLM.step` does (nanoGPT crops its window the same way).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, keys: Tensor, values: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        cache = _cache(keys, values)
        x = model._embed(tokens, keys.shape[3])  # (B, T, E) at positions P ..
        h, _ = model.blocks(x, causal=True, cache=cache)  # (B, T, E); the cache grows by T
        return (model._decode(h[:, -1]), *_stacked(cache))  # logits (B, V)


def gpt_graphs(model: nn.Module, vocab_size: int) -> list[GraphSpec]:
    layers, heads, head_dim = _heads(model.blocks)
    steps = min(STEPS, model.context_length - PAST)
    if steps < 2:
        raise RnnlabError(f"a GPT with a block size of {model.context_length} is too small to "
                          f"export (it needs at least {PAST + 2} positions)")
    past = _random_cache(layers, heads, head_dim, BATCH, PAST)
    axes = {"tokens": {0: "batch", 1: "length"},
            "keys": {1: "batch", 3: "past"}, "values": {1: "batch", 3: "past"}}
    return [GraphSpec("lm_step", GPTStepGraph(model),
                      (_ids(vocab_size, BATCH, steps), *past), ["tokens", "keys", "values"],
                      ["logits", "keys_out", "values_out"], axes)]


# -- the translation Transformer ------------------------------------------------------------

TRANSFORMER_STATE = ["keys", "values", "memory_keys", "memory_values", "memory_mask"]


class TransformerEncoderGraph(nn.Module):
    """src (B, S), lengths (B,) -> the decoder's starting state (TRANSFORMER_STATE): an empty
    self-attention cache, the source's keys and values for each decoder layer, and the mask."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        state = model.encode(src, lengths)
        memory = state["memory"]  # (B, S, E)
        layers, heads, head_dim = _heads(model.decoder)
        memory_keys = torch.stack([layer.multihead_attn.project(memory, "k")
                                   for layer in model.decoder.layers])  # (L, B, H, S, d)
        memory_values = torch.stack([layer.multihead_attn.project(memory, "v")
                                     for layer in model.decoder.layers])  # (L, B, H, S, d)
        empty = memory.new_zeros(layers, src.shape[0], heads, 0, head_dim)  # (L, B, H, 0, d)
        mask = torch.zeros(src.shape, dtype=memory.dtype, device=src.device)  # (B, S)
        positions = torch.arange(src.shape[1], device=src.device)[None, :]
        mask = mask.masked_fill(positions >= state["lengths"][:, None], float("-inf"))
        return empty, empty.clone(), memory_keys, memory_values, mask[:, None, None, :]


class TransformerStepGraph(nn.Module):
    """tokens (B,) and the state -> logits (B, V), keys_out, values_out (the cache one position
    longer), attention (B, S) over the source (the model's `attention_layer`, heads averaged)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, keys: Tensor, values: Tensor, memory_keys: Tensor,
                memory_values: Tensor, memory_mask: Tensor) -> tuple[Tensor, ...]:
        cache = _cache(keys, values)
        for layer, k, v in zip(cache, memory_keys.unbind(0), memory_values.unbind(0),
                               strict=True):
            layer["memory_k"], layer["memory_v"] = k, v
        cache[0]["memory_mask"] = memory_mask
        state = {"cache": cache, "memory": None, "lengths": None, "weights": None}
        logits, new = self.model.step(tokens, state)  # the model's own step, cache read
        return (logits, *_stacked(new["cache"]), new["weights"])


def transformer_translate_graphs(model: nn.Module, src_vocab: int, tgt_vocab: int
                                 ) -> list[GraphSpec]:
    src, lengths = _ids(src_vocab, BATCH, SOURCE), _lengths(BATCH, SOURCE)
    layers, heads, head_dim = _heads(model.decoder)
    with torch.no_grad():
        _, _, memory_keys, memory_values, mask = TransformerEncoderGraph(model)(src, lengths)
    keys, values = _random_cache(layers, heads, head_dim, BATCH, PAST)
    batch_first = {0: "batch", 3: "source_length"}
    encoder = GraphSpec("encoder", TransformerEncoderGraph(model), (src, lengths),
                        ["src", "lengths"], TRANSFORMER_STATE,
                        {"src": {0: "batch", 1: "source_length"}, "lengths": {0: "batch"}})
    decoder = GraphSpec(
        "decoder_step", TransformerStepGraph(model),
        (_ids(tgt_vocab, BATCH), keys, values, memory_keys, memory_values, mask),
        ["tokens", *TRANSFORMER_STATE], ["logits", "keys_out", "values_out", "attention"],
        {"tokens": {0: "batch"}, "keys": {1: "batch", 3: "past"},
         "values": {1: "batch", 3: "past"}, "memory_keys": {1: "batch", 3: "source_length"},
         "memory_values": {1: "batch", 3: "source_length"}, "memory_mask": batch_first})
    return [encoder, decoder]
