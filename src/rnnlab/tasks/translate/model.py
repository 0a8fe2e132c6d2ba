"""The encoder-decoder (Sutskever et al. 2014; Cho et al. 2014) with attention (Bahdanau et al.
2015; Luong et al. 2015), built from rnnlab's recurrent layers.

Shapes: B batch, S source length, T target length, E embedding, H hidden, D directions of the
encoder (1 or 2), M = D*H the size of an encoder output h̄_s, V target vocabulary.

    source ids (B, S) --embed--> (B, S, E) --encoder RNN (lengths)--> memory (B, S, M), final
    final states --bridge: tanh(W [h_fwd; h_bwd])--> decoder's initial state (L, B, H)
    then one target token at a time (`_decode_step`):
      none      x_t = [e(y_{t-1}); c]          c = the top layer's final encoder state, fixed
      bahdanau  c_t = attend(s_{t-1}),  x_t = [e(y_{t-1}); c_t]     (Bahdanau sec. 3.1)
      luong     x_t = [e(y_{t-1}); h̃_{t-1}] with input feeding, else e(y_{t-1}) (Luong sec. 3.3),
                c_t = attend(h_t) after the step                  (Luong sec. 3.1)
      h_t = RNN.step(x_t);  h̃_t = tanh(W_c [h_t; c_t]);  p(y_t | y_<t, x) = softmax(W_s h̃_t)

Bahdanau's deep output (a maxout layer over s, y_{t-1} and c_t, appendix A.2.2) is replaced by
the same one tanh layer as Luong's, so the two differ only where they attend (before or after
the step) and how they score.

Speed: only the first layer's input projection depends on the previous token; it is computed
for all target positions with one matrix product before the time loop, and the output layer (the
largest product, H x V) runs once over all steps after it. The context c_t enters only through
linear maps, so the memory is projected through them once per batch (see `encode`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.decoding.greedy import Hypothesis
from rnnlab.nn.attention import make_attention
from rnnlab.nn.factory import make_recurrent
from rnnlab.tasks.translate.config import TranslateConfig

State = dict[str, Any]


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row of x (B, S, ...) within its own length; padding stays at the end."""
    positions = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, S)
    last = lengths.to(x.device)[:, None] - 1  # (B, 1)
    index = torch.where(positions <= last, last - positions, positions)  # (B, S)
    if x.dim() > 2:
        index = index[..., None].expand_as(x)
    return x.gather(1, index)


class Seq2Seq(nn.Module):
    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, config: TranslateConfig,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.config, self.pad_id = config, pad_id
        e, h, layers = config.embedding, config.hidden, config.layers
        self.directions = 2 if config.bidirectional else 1
        memory = self.directions * h
        self.is_lstm = config.cell.startswith("lstm")
        self.src_embedding = nn.Embedding(src_vocab_size, e, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, e, padding_idx=pad_id)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = make_recurrent(config.cell, e, h, layers, dropout=config.dropout,
                                      bidirectional=config.bidirectional, batch_first=True)
        self.bridge = nn.Linear(memory, h) if config.bridge else None
        self.bridge_cell = nn.Linear(memory, h) if config.bridge and self.is_lstm else None
        self.kind = {"none": "none", "bahdanau": "bahdanau"}.get(config.attention, "luong")
        feed = {"none": memory, "bahdanau": memory}.get(
            self.kind, h if config.input_feeding else 0)
        self.decoder = make_recurrent(config.cell, e + feed, h, layers, dropout=config.dropout)
        self.attention = None if self.kind == "none" else make_attention(
            config.attention, h, memory, local=config.local, window=config.local_window)
        self.combine = nn.Linear(h + memory, h)  # W_c: h̃_t = tanh(W_c [h_t; c_t])
        self.projection = nn.Linear(h, e) if config.tie_embeddings and e != h else None
        self.output = nn.Linear(e if config.tie_embeddings else h, tgt_vocab_size)  # W_s
        if config.tie_embeddings:
            self.output.weight = self.tgt_embedding.weight
        self.tied_parameter_names = ("output.weight",) if config.tie_embeddings else ()

    # -- encoder ------------------------------------------------------------------------------

    def encode(self, src: Tensor, lengths: Tensor) -> State:
        """src (B, S), lengths (B,) -> the decoder's starting state (see `step`)."""
        if self.config.reverse_source:
            src = reverse_within_length(src, lengths)
        x = self.dropout(self.src_embedding(src))  # (B, S, E)
        memory, final = self.encoder(x, lengths=lengths)  # (B, S, M)
        if self.config.reverse_source:
            memory = reverse_within_length(memory, lengths)  # h̄_s back at source position s
        finals = final if self.is_lstm else (final,)  # each (L*D, B, H)
        merged = [self._merge_directions(f) for f in finals]  # each (L, B, M)
        if self.bridge is not None:
            layers = [self.bridge, self.bridge_cell]
            start = tuple(torch.tanh(layer(m)) for layer, m in zip(layers, merged, strict=False))
        else:
            start = tuple(torch.zeros_like(f[:self.config.layers]) for f in finals)
        hidden = start if self.is_lstm else start[0]  # (L, B, H)
        batch = src.shape[0]
        state: State = {"hidden": hidden, "keys": None, "mask": None, "memory_feed": None,
                        "memory_out": None, "context_out": None, "feed": None, "weights": None}
        # The context c enters the decoder only through linear maps (W_feed c into the step's
        # input, W_c's context half into h̃), and W c = sum_s a_s (W h̄_s): so the memory is
        # projected once per batch and each step mixes the projections with its weights.
        if self.kind == "none":
            context = merged[0][-1]  # c: the top layer's final states (B, M), fixed
            state["feed"] = F.linear(context, self._feed_weight())  # (B, G*H)
            state["context_out"] = F.linear(context, self._combine_weights()[1])  # (B, H)
        else:
            state["keys"] = self.attention.project_keys(memory)  # (B, S, A)
            positions = torch.arange(memory.shape[1], device=src.device)[None, :]
            state["mask"] = positions < lengths.to(src.device)[:, None]  # (B, S)
            state["memory_out"] = F.linear(memory, self._combine_weights()[1])  # (B, S, H)
            if self.kind == "bahdanau":
                state["memory_feed"] = F.linear(memory, self._feed_weight())  # (B, S, G*H)
            if self.config.input_feeding:
                state["feed"] = memory.new_zeros(batch, self.config.hidden)  # h̃_0 = 0
        return state

    def _merge_directions(self, final: Tensor) -> Tensor:
        """(L*D, B, H) -> (L, B, D*H): each layer's forward and backward final states side by
        side (torch's layout puts the directions of a layer next to each other)."""
        layers, batch = self.config.layers, final.shape[1]
        final = final.view(layers, self.directions, batch, -1)
        return final.permute(0, 2, 1, 3).reshape(layers, batch, -1)

    # -- decoder ------------------------------------------------------------------------------

    def _feed_weight(self) -> Tensor:
        return self.decoder.weight_ih_l0[:, self.config.embedding:]  # (G*H, feed)

    def _embed_projection(self, tokens: Tensor) -> Tensor:
        """The previous token's share of the first decoder layer's input projection."""
        x = self.dropout(self.tgt_embedding(tokens))  # (..., E)
        weight = self.decoder.weight_ih_l0[:, : self.config.embedding]
        return F.linear(x, weight, self.decoder.bias_ih_l0)  # (..., G*H)

    def _combine_weights(self) -> tuple[Tensor, Tensor]:
        """W_c split into the columns that read h_t and those that read c_t."""
        return (self.combine.weight[:, : self.config.hidden],
                self.combine.weight[:, self.config.hidden:])

    def _decode_step(self, x_proj: Tensor, state: State) -> tuple[Tensor, State]:
        """x_proj (B, G*H) -> the attentional vector h̃_t (B, H) and the next state."""
        hidden, weights = state["hidden"], None
        if self.kind == "bahdanau":
            top = (hidden[0] if self.is_lstm else hidden)[-1]  # s_{t-1} (B, H)
            weights = self.attention.align(top, state["keys"], state["mask"])  # (B, S)
            x_proj = x_proj + torch.bmm(weights.unsqueeze(1), state["memory_feed"]).squeeze(1)
        elif self.kind == "none":
            x_proj = x_proj + state["feed"]
        elif self.config.input_feeding:
            x_proj = x_proj + F.linear(state["feed"], self._feed_weight())
        h, hidden = self.decoder.step(None, hidden, x_proj=x_proj)  # (B, H)
        if self.kind == "luong":
            weights = self.attention.align(h, state["keys"], state["mask"])  # (B, S)
        if self.kind == "none":
            context_out = state["context_out"]  # (B, H)
        else:
            context_out = torch.bmm(weights.unsqueeze(1), state["memory_out"]).squeeze(1)
        h_out = F.linear(h, self._combine_weights()[0], self.combine.bias)
        attentional = torch.tanh(h_out + context_out)  # h̃_t = tanh(W_c [h_t; c_t]) (B, H)
        new = {**state, "hidden": hidden, "weights": weights}
        if self.config.input_feeding:
            new["feed"] = attentional
        return attentional, new

    def _logits(self, attentional: Tensor) -> Tensor:
        out = self.dropout(attentional)
        if self.projection is not None:
            out = self.projection(out)  # (..., E)
        return self.output(out)  # (..., V)

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Logits (B, T, V) of every target position given the previous gold tokens (teacher
        forcing), or, with teacher_forcing < 1 while training, the model's own argmax instead
        with probability 1 - teacher_forcing at each position (a coin per token)."""
        if self._teacher_forced():
            return self._logits(self._attentional(src, lengths, tgt_in))  # one product for all
        state = self.encode(src, lengths)
        logits, tokens = [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            out, state = self._decode_step(self._embed_projection(tokens), state)
            logits.append(self._logits(out))  # (B, V)
            if t + 1 < tgt_in.shape[1]:
                gold = torch.rand(tokens.shape, device=tokens.device) < self.config.teacher_forcing
                tokens = torch.where(gold, tgt_in[:, t + 1], logits[-1].argmax(-1).detach())
        return torch.stack(logits, dim=1)

    def _teacher_forced(self) -> bool:
        return self.config.teacher_forcing == 1.0 or not self.training

    def _attentional(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """h̃_t (B, T, H) for every target position, reading the gold previous tokens."""
        state = self.encode(src, lengths)
        outs = []
        for x_t in self._embed_projection(tgt_in).unbind(1):  # (B, G*H) each
            out, state = self._decode_step(x_t, state)
            outs.append(out)
        return torch.stack(outs, dim=1)

    def loss(self, src: Tensor, lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor,
             label_smoothing: float | None = None) -> tuple[Tensor, int]:
        """Mean cross-entropy per target token (padding ignored), and the number of tokens.

        With teacher forcing the output layer runs on the real (unpadded) positions only: it
        is the largest product of the model (H x V per token), and a bucket of sentences still
        holds a third or so of padding on the target side."""
        real = tgt_out != self.pad_id  # (B, T)
        if self._teacher_forced():
            logits = self._logits(self._attentional(src, lengths, tgt_in)[real])  # (N, V)
        else:
            logits = self(src, lengths, tgt_in)[real]  # (N, V)
        smoothing = self.config.label_smoothing if label_smoothing is None else label_smoothing
        loss = F.cross_entropy(logits, tgt_out[real], label_smoothing=smoothing)
        return loss, int(real.sum())

    # -- decoding: only `step` (and `reorder_state` for beams) ---------------------------------

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """tokens (B,) -> logits (B, V). The state (from `encode`) carries the decoder's hidden
        state, the attentional vector to feed, the encoder outputs (as attention keys, and
        projected for the decoder's input and output layers) with their mask, and the
        attention weights of this step ("weights", (B, S))."""
        out, state = self._decode_step(self._embed_projection(tokens), state)
        return self._logits(out), state

    @staticmethod
    def reorder_state(state: State, indices: Tensor) -> State:
        """Rows `indices` of a state: the recurrent state has its batch on dim 1, the rest on 0."""
        new: State = {}
        for key, value in state.items():
            if value is None:
                new[key] = None
            elif key == "hidden":
                parts = value if isinstance(value, tuple) else (value,)
                chosen = tuple(p.index_select(1, indices) for p in parts)
                new[key] = chosen if isinstance(value, tuple) else chosen[0]
            else:
                new[key] = value.index_select(0, indices)
        return new

    @torch.no_grad()
    def translate(self, src: Tensor, lengths: Tensor, bos_id: int, eos_id: int, *,
                  beam: int = 1, alpha: float = 0.0, max_len_ratio: float = 2.0,
                  max_len_extra: int = 10, n_best: int = 1) -> list[Hypothesis]:
        """Greedy (beam 1) or beam search; outputs stop at ratio * source length + extra;
        with n_best > 1 each hypothesis carries its runners-up (`alternatives`)."""
        from rnnlab.decoding.beam import beam_search
        from rnnlab.decoding.greedy import greedy_search

        state = self.encode(src, lengths)
        max_lengths = (lengths.float() * max_len_ratio).long().to(src.device) + max_len_extra
        if beam == 1:
            return greedy_search(self.step, state, bos_id, eos_id, max_lengths)
        return beam_search(self.step, state, bos_id, eos_id, max_lengths, beam=beam,
                           alpha=alpha, reorder=self.reorder_state, n_best=n_best)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
