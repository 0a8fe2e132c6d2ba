"""What the units of a trained character model track (Karpathy, Johnson & Fei-Fei 2015).

We step a trained `LanguageModel` over a text one character at a time and record, for every
layer, the hidden state h, the LSTM memory cell c and every gate (LSTM i f g o, GRU r z n).
Then, for a few features of the text that a good model must track (inside quotes, position in
the line, inside brackets, inside a speaker's name), we look for the single unit whose
activation correlates best with each, render the text coloured by a unit, and measure how often
each gate is saturated (< 0.1 or > 0.9), the statistic of the paper's Figure 3.

The state update is the cell's own `recurrence` (nn/cells.py). Its gates are not returned by
it, so `gates()` recomputes them from the same weights; a test checks that they reproduce the
recurrence's h and c exactly, so the two copies cannot drift apart.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.recurrent import GRU, LSTM, RNN, _Recurrent

GATES = ("i", "f", "o", "r", "z")  # the sigmoid gates, whose saturation we count
SATURATED_LOW, SATURATED_HIGH = 0.1, 0.9  # thresholds of Karpathy et al. 2015, Section 4.2
FEATURES = ("in_quotes", "position_in_line", "in_brackets", "speaker_name")
OPENING, CLOSING = "([{", ")]}"
# A Shakespeare speaker line: a capitalised name (words, apostrophes) ending in ':' alone.
SPEAKER_LINE = re.compile(r"[A-Z][A-Za-z' ]*:")


def _layer_weights(rnn: _Recurrent, layer: int) -> dict[str, Tensor | None]:
    suffix = f"_l{layer}"
    names = ("weight_ih", "bias_ih", "weight_hh", "bias_hh", "weight_ci", "weight_cf",
             "weight_co")
    return {n: getattr(rnn, n + suffix, None) for n in names}


def gates(rnn: _Recurrent, w: dict, x_proj: Tensor, state: tuple[Tensor, ...]) -> dict:
    """The gate activations of one step (each (B, H)), from the weights `recurrence` uses."""
    h_proj = F.linear(state[0], w["weight_hh"], w["bias_hh"])  # (B, G*H)
    if isinstance(rnn, LSTM):
        c_prev = state[1]
        i, f, g, o = (x_proj + h_proj).chunk(4, dim=1)  # each (B, H)
        if rnn.peephole:
            i, f = i + w["weight_ci"] * c_prev, f + w["weight_cf"] * c_prev
        i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
        if rnn.peephole:
            o = o + w["weight_co"] * (f * c_prev + i * g)  # the output peephole reads c_t
        return {"i": i, "f": f, "g": g, "o": torch.sigmoid(o)}
    if isinstance(rnn, GRU) and rnn.variant == "minimal":
        z, n = (x_proj + h_proj).chunk(2, dim=1)
        return {"z": torch.sigmoid(z), "n": torch.tanh(n)}
    if isinstance(rnn, GRU):
        x_r, x_z, x_n = x_proj.chunk(3, dim=1)
        h_r, h_z, h_n = h_proj.chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        return {"r": r, "z": torch.sigmoid(x_z + h_z), "n": torch.tanh(x_n + r * h_n)}
    return {}


def _step(rnn: _Recurrent, w: dict, x_proj: Tensor, state: tuple[Tensor, ...]) -> tuple:
    """One step of the cell's own equations (nn/cells.py), state in and out as a tuple."""
    if isinstance(rnn, LSTM):
        peepholes = (w["weight_ci"], w["weight_cf"], w["weight_co"]) if rnn.peephole else None
        return LSTMCell.recurrence(x_proj, state, w["weight_hh"], w["bias_hh"], peepholes)
    if isinstance(rnn, GRU):
        return (GRUCell.recurrence(x_proj, state[0], w["weight_hh"], w["bias_hh"], rnn.variant),)
    if isinstance(rnn, RNN):
        return (RNNCell.recurrence(x_proj, state[0], w["weight_hh"], w["bias_hh"],
                                   rnn.nonlinearity),)
    raise TypeError(f"cannot record the activations of a {type(rnn).__name__}")


@torch.no_grad()
def record_activations(model, ids: list[int]) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Step `model` (a LanguageModel) over the token ids from a zero state.

    Returns {"l<layer>.<quantity>": (N, H) array} for h, c (LSTM) and every gate, where row t
    is the value after reading token t.
    """
    model.eval()
    rnn = model.rnn
    layer_input = model.embedding(torch.tensor(ids, device=model.embedding.weight.device))
    recorded: dict[str, np.ndarray] = {}
    for layer in range(rnn.num_layers):
        w = _layer_weights(rnn, layer)
        x_proj = F.linear(layer_input, w["weight_ih"], w["bias_ih"])  # (N, G*H)
        zeros = x_proj.new_zeros(1, rnn.hidden_size)
        state = (zeros, zeros) if isinstance(rnn, LSTM) else (zeros,)
        rows: dict[str, list[Tensor]] = {}
        for x_t in x_proj.unbind(0):
            x_t = x_t.unsqueeze(0)  # (1, G*H)
            values = gates(rnn, w, x_t, state)
            state = _step(rnn, w, x_t, state)
            values["h"] = state[0]
            if len(state) == 2:
                values["c"] = state[1]
            for name, value in values.items():
                rows.setdefault(name, []).append(value[0])
        for name, values in rows.items():
            recorded[f"l{layer}.{name}"] = torch.stack(values).cpu().numpy()  # (N, H)
        layer_input = torch.stack(rows["h"])  # (N, H): the next layer reads this layer's h
    return recorded


def text_features(text: str) -> dict[str, np.ndarray]:
    """Per-character features, each the value *after* reading that character (as the state)."""
    n = len(text)
    feats = {name: np.zeros(n) for name in FEATURES}
    quoted, depth, column = False, 0, 0
    for t, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        depth += (ch in OPENING) - (ch in CLOSING)
        depth = max(depth, 0)
        column = 0 if ch == "\n" else column + 1
        feats["in_quotes"][t] = quoted
        feats["in_brackets"][t] = depth > 0
        feats["position_in_line"][t] = column
    start = 0
    for line in text.split("\n"):
        match = SPEAKER_LINE.match(line)
        if match and match.end() == len(line.rstrip()):
            feats["speaker_name"][start : start + match.end()] = 1.0
        start += len(line) + 1
    return feats


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of each column of values (N, H) with feature (N,); 0 for a constant column."""
    v = values - values.mean(0)
    f = feature - feature.mean()
    denominator = np.sqrt((v**2).sum(0) * (f**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (v * f[:, None]).sum(0) / denominator
    return np.nan_to_num(r)


@dataclass(frozen=True)
class UnitMatch:
    feature: str
    quantity: str  # "l1.c": layer 1's memory cell
    unit: int
    r: float

    def to_dict(self) -> dict:
        return {"feature": self.feature, "quantity": self.quantity, "unit": self.unit,
                "r": round(self.r, 4)}


def best_units(acts: dict[str, np.ndarray], feats: dict[str, np.ndarray],
               top: int = 3) -> dict[str, list[UnitMatch]]:
    """For each feature present in the text, the `top` units with the largest |r|."""
    found: dict[str, list[UnitMatch]] = {}
    for feature, values in feats.items():
        if values.std() == 0:
            continue  # absent from this text (e.g. no brackets): nothing to correlate with
        matches = [UnitMatch(feature, q, int(u), float(r))
                   for q, a in acts.items() for u, r in enumerate(correlations(a, values))]
        matches.sort(key=lambda m: -abs(m.r))
        found[feature] = matches[:top]
    return found


def saturation(acts: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per sigmoid gate: the fraction of (time, unit) values < 0.1 and > 0.9, and per unit."""
    stats = {}
    for name, values in acts.items():
        if name.split(".")[-1] not in GATES:
            continue
        low, high = (values < SATURATED_LOW).mean(0), (values > SATURATED_HIGH).mean(0)
        stats[name] = {"low": float(low.mean()), "high": float(high.mean()),
                       "low_per_unit": low.round(4).tolist(),
                       "high_per_unit": high.round(4).tolist()}
    return stats


def _colour(value: float) -> str:
    """-1 blue, 0 white, +1 red (the paper's colour scale)."""
    v = max(-1.0, min(1.0, value))
    fade = int(255 * (1 - abs(v)))
    return f"rgb(255,{fade},{fade})" if v >= 0 else f"rgb({fade},{fade},255)"


def render_html(text: str, values: np.ndarray, title: str) -> str:
    """The text with each character's background coloured by a unit's activation (N,).

    Values are scaled by their largest magnitude, so a unit in (0, 1) (a gate) shows as white
    to red and a tanh unit as blue to red."""
    scale = float(np.abs(values).max()) or 1.0
    spans = []
    for ch, v in zip(text, values, strict=True):
        shown = "↵<br>" if ch == "\n" else html.escape(ch).replace(" ", "&nbsp;")
        spans.append(f'<span style="background:{_colour(float(v) / scale)}" '
                     f'title="{float(v):.3f}">{shown}</span>')
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>\n"
            f"<h3>{html.escape(title)}</h3>\n<div style=\"font-family:monospace;line-height:1.5\">"
            + "".join(spans) + "</div>\n")
