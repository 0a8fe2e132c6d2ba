"""Convolutional sequence to sequence blocks (ConvS2S; Gehring et al. 2017, "Convolutional
Sequence to Sequence Learning"), as fairseq's `fconv` model computes them.

Shapes: B batch, S source length, T target length, E embedding, C channels, k kernel width,
V target vocabulary. Each block, in the paper's symbols (sec. 3):

    embeddings   e_j = w_j + p_j                      word plus learned position (3.1)
    block        [A B] = conv(dropout(h^{l-1}))        one convolution to 2C channels (3.2)
                 v = A ⊗ σ(B)                          gated linear unit (GLU, Dauphin et al.)
                 h^l = (v + h^{l-1}) · √0.5            residual, scaled to keep the variance (3.4)
    encoder      z_j = W_out h^L_j                     the keys; values z_j + e_j (3.3)
    decoder      the convolution sees only h_{<=i}: k-1 positions of left padding (3.2)
                 d_i = (W_d v_i + b_d + g_i) · √0.5    g_i the target embedding (3.3)
                 a_ij = softmax_j(d_i · z_j)
                 c_i = (Σ_j a_ij (z_j + e_j)) · √m     m real source positions (fairseq, 3.4)
                 h^l_i = ((v_i + W_c c_i) · √0.5 + h^{l-1}_i) · √0.5
    every decoder layer attends ("multi-step attention"): layer l's query reads the layer's own
    convolution, so later layers refine where earlier ones looked.

Incremental decoding: a decoder layer's output at position i depends on its inputs at positions
i-k+1 .. i, so the state of a decoder layer is its last k-1 inputs ("history", (B, k-1, C)); a
step appends the new input, convolves the k positions, and keeps the last k-1 again.

Left out from fairseq, on purpose: weight normalisation and the gradient scaling of the encoder
output by 1/(2·layers) (both serve fairseq's Nesterov SGD at lr 0.25; rnnlab trains with Adam).
The initialisation follows the paper (sec. 3.5): N(0, √(4(1-p)/(k·C_in))) before a GLU,
N(0, √((1-p)/n_in)) for plain projections, N(0, 0.1) embeddings, zero biases.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.errors import RnnlabError

SQRT_HALF = math.sqrt(0.5)


def glu(x: Tensor) -> Tensor:
    """Gated linear unit over the last dimension: [A B] -> A ⊗ σ(B) (Dauphin et al. 2017)."""
    return F.glu(x, dim=-1)  # torch's fused A * sigmoid(B), first half A


def _linear(n_in: int, n_out: int, dropout: float = 0.0) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.normal_(layer.weight, std=math.sqrt((1 - dropout) / n_in))
    nn.init.zeros_(layer.bias)
    return layer


def _conv(channels: int, kernel: int, dropout: float, padding: int = 0) -> nn.Conv1d:
    """C -> 2C channels (the two halves of a GLU), initialised for the GLU that follows."""
    conv = nn.Conv1d(channels, 2 * channels, kernel, padding=padding)
    nn.init.normal_(conv.weight, std=math.sqrt(4 * (1 - dropout) / (kernel * channels)))
    nn.init.zeros_(conv.bias)
    return conv


def _embedding(num: int, dim: int, pad_id: int | None = None) -> nn.Embedding:
    table = nn.Embedding(num, dim, padding_idx=pad_id)
    nn.init.normal_(table.weight, std=0.1)
    if pad_id is not None:
        nn.init.zeros_(table.weight[pad_id])
    return table


class ConvEmbedding(nn.Module):
    """e_j = w_j + p_j: token embedding plus a learned embedding of the position j (sec. 3.1)."""

    def __init__(self, vocab_size: int, embedding: int, max_positions: int, pad_id: int) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.tokens = _embedding(vocab_size, embedding, pad_id)
        self.positions = _embedding(max_positions, embedding)

    def forward(self, ids: Tensor, start: Tensor | int = 0) -> Tensor:
        """ids (B, L) at positions start .. start+L-1 (start: an int or (B,)) -> (B, L, E)."""
        offsets = torch.arange(ids.shape[1], device=ids.device)[None, :]  # (1, L)
        positions = offsets + (start[:, None] if isinstance(start, Tensor) else start)  # (B|1, L)
        # (an exported graph cannot raise: there the position lookup itself fails)
        if not torch.compiler.is_exporting() and int(positions.max()) >= self.max_positions:
            raise RnnlabError(f"a sentence is longer than max_positions {self.max_positions} "
                              "(the positions this model learned)")
        return self.tokens(ids) + self.positions(positions)


class ConvEncoder(nn.Module):
    """Source ids -> keys z (B, S, E) and values z + e (B, S, E) for every decoder layer.

    The convolutions are centred (k//2 positions of zero padding each side) and padded source
    positions are zeroed before each one, so a sentence's encoding does not depend on the
    batch it sits in."""

    def __init__(self, vocab_size: int, embedding: int, channels: int, layers: int,
                 kernel: int, dropout: float, max_positions: int, pad_id: int = 0) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise RnnlabError(f"the encoder's kernel width must be odd (centred), got {kernel}")
        self.dropout = nn.Dropout(dropout)
        self.embed = ConvEmbedding(vocab_size, embedding, max_positions, pad_id)
        self.project_in = _linear(embedding, channels, dropout)
        self.convs = nn.ModuleList(_conv(channels, kernel, dropout, padding=kernel // 2)
                                   for _ in range(layers))
        self.project_out = _linear(channels, embedding)

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """src (B, S), lengths (B,) -> keys (B, S, E), values (B, S, E), mask (B, S)."""
        positions = torch.arange(src.shape[1], device=src.device)[None, :]
        mask = positions < lengths.to(src.device)[:, None]  # (B, S), True on real tokens
        e = self.dropout(self.embed(src))  # (B, S, E)
        h = self.project_in(e)  # (B, S, C)
        for conv in self.convs:
            x = self.dropout(h).masked_fill(~mask[..., None], 0.0)
            v = glu(conv(x.transpose(1, 2)).transpose(1, 2))  # (B, S, 2C) -> (B, S, C)
            h = (v + h) * SQRT_HALF
        z = self.project_out(h).masked_fill(~mask[..., None], 0.0)  # keys (B, S, E)
        return z, (z + e) * SQRT_HALF, mask  # values: fairseq scales z + e by √0.5 as well


class ConvDecoderLayer(nn.Module):
    """One decoder block: causal convolution, GLU, its own attention over the source, residual."""

    def __init__(self, channels: int, embedding: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.kernel = kernel
        self.dropout = nn.Dropout(dropout)
        self.conv = _conv(channels, kernel, dropout)  # no padding: the history is the padding
        self.attention_in = _linear(channels, embedding)  # W_d
        self.attention_out = _linear(embedding, channels)  # W_c

    def empty_history(self, x: Tensor) -> Tensor:
        """The k-1 zero inputs before the first position: causal (left) padding. x (B, ·, C)."""
        return x.new_zeros(x.shape[0], self.kernel - 1, x.shape[2])

    def forward(self, h: Tensor, g: Tensor, keys: Tensor, values: Tensor, mask: Tensor,
                history: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """h (B, T, C) the layer's input, g (B, T, E) the target embeddings, keys/values
        (B, S, E), mask (B, S), history (B, k-1, C) the inputs before position 0 of h ->
        output (B, T, C), attention a (B, T, S), the new history (B, k-1, C)."""
        x = torch.cat([history, self.dropout(h)], dim=1)  # (B, k-1+T, C)
        v = glu(self.conv(x.transpose(1, 2)).transpose(1, 2))  # (B, T, C)
        d = (self.attention_in(v) + g) * SQRT_HALF  # (B, T, E)
        scores = torch.bmm(d, keys.transpose(1, 2))  # (B, T, S)
        a = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=-1)
        m = mask.sum(dim=1).to(values.dtype)[:, None, None]  # (B, 1, 1) real source positions
        c = torch.bmm(a, values) * m.sqrt()  # (B, T, E)
        out = ((v + self.attention_out(c)) * SQRT_HALF + h) * SQRT_HALF
        return out, a, x[:, x.shape[1] - (self.kernel - 1):]


class ConvDecoder(nn.Module):
    """Target ids and the encoder's keys/values -> logits, a layer stack of ConvDecoderLayer.

    `forward` reads a whole target prefix at once (training, scoring); `step` reads one token
    per sentence and carries `histories` (one (B, k-1, C) per layer) and the next position."""

    def __init__(self, vocab_size: int, embedding: int, channels: int, layers: int,
                 kernel: int, dropout: float, max_positions: int, pad_id: int = 0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.embed = ConvEmbedding(vocab_size, embedding, max_positions, pad_id)
        self.project_in = _linear(embedding, channels, dropout)
        self.layers = nn.ModuleList(ConvDecoderLayer(channels, embedding, kernel, dropout)
                                    for _ in range(layers))
        self.project_out = _linear(channels, embedding)
        self.output = _linear(embedding, vocab_size, dropout)

    def forward(self, tgt: Tensor, keys: Tensor, values: Tensor, mask: Tensor,
                histories: list[Tensor] | None = None, start: Tensor | int = 0,
                ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """tgt (B, T) at positions start.. -> logits (B, T, V), each layer's attention
        (B, T, S), and each layer's new history. `histories` None: the sentence starts here."""
        g = self.dropout(self.embed(tgt, start))  # (B, T, E)
        h = self.project_in(g)  # (B, T, C)
        attention, new_histories = [], []
        for i, layer in enumerate(self.layers):
            history = layer.empty_history(h) if histories is None else histories[i]
            h, a, history = layer(h, g, keys, values, mask, history)
            attention.append(a)
            new_histories.append(history)
        logits = self.output(self.dropout(self.project_out(h)))  # (B, T, V)
        return logits, attention, new_histories
