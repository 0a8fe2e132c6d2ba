"""What each task exports: the modules whose `forward` becomes a graph, with example inputs,
input and output names, and which axes vary (batch, length).

Every module here calls the task model's own methods (embedding, pooling, heads, attention, the
decoder step), with the recurrent layers in their scan form (`scan.scan_form`), so the graph
computes what `rnnlab predict|tag|sample|translate` compute; only what cannot be a graph stays
outside: the CRF's Viterbi search (`runtime/tag_decoder.py`) and the sampling or search loop
over the step graphs (a client's few lines, shown in the model card).

Shapes: B batch, T words (or tokens), C characters per word, S source tokens, L layers,
H hidden, K tags, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.tasks.classify.model import Classifier, TextCNN
from rnnlab.tasks.lm.model import LanguageModel
from rnnlab.tasks.tag.model import Tagger
from rnnlab.tasks.translate.model import Seq2Seq

# Example sizes: all different and above 1, so no axis is taken for a constant or for another.
BATCH, STEPS, CHARS, SOURCE = 3, 7, 6, 5


@dataclass
class GraphSpec:
    """One graph to export: `module(*example)` with named inputs and outputs."""

    name: str  # file stem: <name>.onnx
    module: nn.Module
    example: tuple[Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]] = field(default_factory=dict)  # input -> {axis: name}
    varargs: int | None = None  # inputs from this index on are `forward(..., *tensors)`

    def dynamic_shapes(self) -> tuple[Any, ...]:
        """For torch.onnx.export(dynamo=True): one torch.export.Dim per axis name."""
        dims = {n: torch.export.Dim(n) for spec in self.axes.values() for n in spec.values()}
        shapes = tuple({axis: dims[n] for axis, n in self.axes[name].items()}
                       if name in self.axes else None for name in self.inputs)
        if self.varargs is None:
            return shapes
        return (*shapes[: self.varargs], shapes[self.varargs:])


def _lengths(batch: int, steps: int) -> Tensor:
    """Lengths with one full, one short and one middling sentence (padding is exercised)."""
    return torch.tensor([steps, max(1, steps - 4), max(1, steps - 2)][:batch])


def _ids(vocab_size: int, *shape: int) -> Tensor:
    return torch.randint(4, max(vocab_size, 5), shape)  # real tokens, past the 4 specials


# -- classification ------------------------------------------------------------------------------


class ClassifierGraph(nn.Module):
    """tokens (B, T), lengths (B,) -> probabilities (B, C) [, attention weights (B, T)]."""

    def __init__(self, model: Classifier | TextCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        logits, weights = self.model(tokens, lengths)
        probabilities = torch.softmax(logits, dim=-1)  # (B, C)
        return (probabilities,) if weights is None else (probabilities, weights)


def classifier_graphs(model: Classifier | TextCNN, vocab_size: int) -> list[GraphSpec]:
    steps = max(STEPS, *getattr(model, "widths", (1,)))
    outputs = ["probabilities"]
    if any(getattr(model, pooling, None) is not None for pooling in ("attention", "structured")):
        outputs.append("attention")  # word weights (structured: the mean of the hops)
    return [GraphSpec("classifier", ClassifierGraph(model),
                      (_ids(vocab_size, BATCH, steps), _lengths(BATCH, steps)),
                      ["tokens", "lengths"], outputs,
                      {"tokens": {0: "batch", 1: "length"}, "lengths": {0: "batch"}})]


# -- tagging ---------------------------------------------------------------------------------------


class TaggerGraph(nn.Module):
    """words (B, T), chars (B, T, C), char_lengths (B, T), lengths (B,) -> emissions (B, T, K).

    The word encoder is the BiLSTM or, with `--model transformer`, the input map, the positions
    and the Transformer encoder (padding masked from `lengths`), as `Tagger.emissions` runs them.

    `Tagger.emissions` runs the character model on the real words only (a boolean selection,
    whose size depends on the data); here it runs on every position, padding words included,
    and their features are replaced by zeros, as `emissions` leaves them.
    """

    def __init__(self, model: Tagger) -> None:
        super().__init__()
        self.model = model

    def forward(self, words: Tensor, chars: Tensor, char_lengths: Tensor,
                lengths: Tensor) -> Tensor:
        model = self.model
        x = model.embedding(words)  # (B, T, E_w)
        if model.chars is not None:
            batch, steps, width = chars.shape
            per_word = model.chars(chars.reshape(batch * steps, width),
                                   char_lengths.reshape(batch * steps))  # (B*T, F)
            per_word = per_word.reshape(batch, steps, -1)  # (B, T, F)
            real = (char_lengths > 0).unsqueeze(-1)  # (B, T, 1)
            x = torch.cat([x, torch.where(real, per_word, torch.zeros_like(per_word))], dim=2)
        if model.input is None:
            out, _ = model.encoder(x, lengths=lengths)  # (B, T, 2H)
        else:
            h = model.input(x) + model.positions(x.shape[1])  # (B, T, H)
            out, _ = model.encoder(h, lengths)  # (B, T, H)
        return model.output(out)  # (B, T, K)


def tagger_graphs(model: Tagger, num_words: int, num_chars: int) -> list[GraphSpec]:
    lengths = _lengths(BATCH, STEPS)
    char_lengths = torch.randint(1, CHARS + 1, (BATCH, STEPS))
    char_lengths[torch.arange(STEPS)[None, :] >= lengths[:, None]] = 0  # padding words
    chars = _ids(num_chars, BATCH, STEPS, CHARS)
    chars[torch.arange(CHARS)[None, None, :] >= char_lengths[..., None]] = 0
    words = _ids(num_words, BATCH, STEPS) * (char_lengths > 0)
    return [GraphSpec("tagger", TaggerGraph(model), (words, chars, char_lengths, lengths),
                      ["words", "chars", "char_lengths", "lengths"], ["emissions"],
                      {"words": {0: "batch", 1: "length"},
                       "chars": {0: "batch", 1: "length", 2: "word_length"},
                       "char_lengths": {0: "batch", 1: "length"}, "lengths": {0: "batch"}})]


# -- language models ------------------------------------------------------------------------------


class LMStepGraph(nn.Module):
    """tokens (B,), h (L, B, H) [, c (L, B, H)] -> logits (B, V), h [, c]: one step, so a client
    samples token by token without re-reading the prefix."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        hidden = state[0] if len(state) == 1 else state
        out, hidden = model.rnn.step(model.embedding(tokens), hidden)  # (B, H)
        parts = hidden if isinstance(hidden, tuple) else (hidden,)
        return (model._decode(out), *parts)  # logits (B, V)


def lm_graphs(model: LanguageModel, vocab_size: int) -> list[GraphSpec]:
    rnn = model.rnn
    states = ["h", "c"] if rnn.num_states == 2 else ["h"]
    zeros = torch.randn(rnn.num_layers, BATCH, rnn.hidden_size) * 0.1
    axes = {"tokens": {0: "batch"}, **{s: {1: "batch"} for s in states}}
    return [GraphSpec("lm_step", LMStepGraph(model),
                      (_ids(vocab_size, BATCH), *[zeros.clone() for _ in states]),
                      ["tokens", *states], ["logits", *[f"{s}_out" for s in states]], axes,
                      varargs=1)]


# -- translation -------------------------------------------------------------------------------

# The decoder state of `Seq2Seq.encode`, by key: which axis is the batch; the recurrent state
# (h, c) has it on 1, the encoder-side tensors on 0.
STATE_KEYS = ("keys", "mask", "memory_feed", "memory_out", "context_out", "feed")


def translate_state_names(model: Seq2Seq) -> list[str]:
    """The tensors a decoder step reads, in graph order (those the model's kind uses)."""
    src = torch.tensor([[4, 5]])
    with torch.no_grad():
        state = model.encode(src, torch.tensor([2]))
    recurrent = ["h", "c"] if model.is_lstm else ["h"]
    return recurrent + [k for k in STATE_KEYS if state[k] is not None]


class EncoderGraph(nn.Module):
    """src (B, S), lengths (B,) -> the decoder's starting state, one tensor per name."""

    def __init__(self, model: Seq2Seq, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        state = self.model.encode(src, lengths)
        hidden = state["hidden"] if isinstance(state["hidden"], tuple) else (state["hidden"],)
        return (*hidden, *[state[k] for k in self.names[len(hidden):]])


class DecoderStepGraph(nn.Module):
    """tokens (B,) and the state -> logits (B, V), attention weights (B, S) (with attention),
    and the parts of the state that a step changes (h, c, and the fed vector)."""

    def __init__(self, model: Seq2Seq, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names
        self.recurrent = 2 if model.is_lstm else 1

    def forward(self, tokens: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        hidden = tensors[: self.recurrent]
        state = dict.fromkeys(("weights", *STATE_KEYS))
        state.update(zip(self.names[self.recurrent:], tensors[self.recurrent:], strict=True))
        state["hidden"] = hidden if model.is_lstm else hidden[0]
        logits, new = model.step(tokens, state)
        new_hidden = new["hidden"] if model.is_lstm else (new["hidden"],)
        outputs = [logits, *new_hidden]
        if new["weights"] is not None:
            outputs.append(new["weights"])
        if "feed" in self.names and model.config.input_feeding:
            outputs.append(new["feed"])
        return tuple(outputs)


def translate_graphs(model: Seq2Seq, src_vocab: int, tgt_vocab: int) -> list[GraphSpec]:
    names = translate_state_names(model)
    recurrent = names[: 2 if model.is_lstm else 1]
    src, lengths = _ids(src_vocab, BATCH, SOURCE), _lengths(BATCH, SOURCE)
    with torch.no_grad():
        example_state = EncoderGraph(model, names)(src, lengths)
    batch_axis = {n: ({1: "batch"} if n in recurrent else {0: "batch"}) for n in names}
    for n in ("keys", "mask", "memory_feed", "memory_out"):
        if n in batch_axis:
            batch_axis[n][1] = "source_length"
    outputs = ["logits", *[f"{n}_out" for n in recurrent]]
    if model.kind != "none":
        outputs.append("attention")
    if "feed" in names and model.config.input_feeding:
        outputs.append("feed_out")
    encoder = GraphSpec("encoder", EncoderGraph(model, names), (src, lengths),
                        ["src", "lengths"], names,
                        {"src": {0: "batch", 1: "source_length"}, "lengths": {0: "batch"}})
    decoder = GraphSpec("decoder_step", DecoderStepGraph(model, names),
                        (_ids(tgt_vocab, BATCH), *example_state), ["tokens", *names], outputs,
                        {"tokens": {0: "batch"}, **batch_axis}, varargs=1)
    return [encoder, decoder]
