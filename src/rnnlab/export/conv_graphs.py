"""The graphs of the ConvS2S translator (Gehring et al. 2017): the encoder, and one decoder step
whose state is what `ConvSeq2Seq.step` carries: each decoder layer's last k-1 inputs (its causal
convolution's window) and the position of the next target token.

    keys, values   (B, S, E)          the encoder's output, fixed
    mask           (B, S)             True on real source tokens
    histories      (L, B, k-1, C)     each decoder layer's last k-1 inputs (zeros at the start:
                                      the causal left padding)
    position       (B,)               the next target position (0 at the start)

Shapes: B batch, S source tokens, E embedding, C channels, k kernel width, L decoder layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.export.graphs import BATCH, SOURCE, GraphSpec, _ids, _lengths

CONV_STATE = ["keys", "values", "mask", "histories", "position"]
PAST = 4  # the example's next position (any value the learned positions cover)


class ConvEncoderGraph(nn.Module):
    """src (B, S), lengths (B,) -> the decoder's starting state (CONV_STATE)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        state = model.encode(src, lengths)
        layers = model.decoder.layers
        histories = state["keys"].new_zeros(len(layers), src.shape[0], layers[0].kernel - 1,
                                            layers[0].conv.in_channels)  # (L, B, k-1, C)
        return state["keys"], state["values"], state["mask"], histories, state["position"]


class ConvStepGraph(nn.Module):
    """tokens (B,) and the state -> logits (B, V), histories_out, position_out, attention
    (B, S) over the source (the model's `attention_layer`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, keys: Tensor, values: Tensor, mask: Tensor,
                histories: Tensor, position: Tensor) -> tuple[Tensor, ...]:
        state = {"keys": keys, "values": values, "mask": mask,
                 "histories": list(histories.unbind(0)), "position": position, "weights": None}
        logits, new = self.model.step(tokens, state)  # the model's own step
        return logits, torch.stack(new["histories"]), new["position"], new["weights"]


def conv_translate_graphs(model: nn.Module, src_vocab: int, tgt_vocab: int) -> list[GraphSpec]:
    src, lengths = _ids(src_vocab, BATCH, SOURCE), _lengths(BATCH, SOURCE)
    with torch.no_grad():
        keys, values, mask, histories, _ = ConvEncoderGraph(model)(src, lengths)
    histories = torch.randn_like(histories)  # a state some way into the sentence
    position = torch.full((BATCH,), PAST)
    encoder = GraphSpec("encoder", ConvEncoderGraph(model), (src, lengths), ["src", "lengths"],
                        CONV_STATE,
                        {"src": {0: "batch", 1: "source_length"}, "lengths": {0: "batch"}})
    source = {0: "batch", 1: "source_length"}
    decoder = GraphSpec(
        "decoder_step", ConvStepGraph(model),
        (_ids(tgt_vocab, BATCH), keys, values, mask, histories, position),
        ["tokens", *CONV_STATE], ["logits", "histories_out", "position_out", "attention"],
        {"tokens": {0: "batch"}, "keys": source, "values": source, "mask": source,
         "histories": {1: "batch"}, "position": {0: "batch"}})
    return [encoder, decoder]
