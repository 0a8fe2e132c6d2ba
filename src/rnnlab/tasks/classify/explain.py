"""Showing which words the attention pooling read most: terminal colour and an HTML strip.

The PNG strip is `rnnlab.plots.plot_attention_strip` (plots live in one place).
"""

from __future__ import annotations

import html

from rnnlab.tasks.classify.run import Prediction

# 256-colour terminal backgrounds from white to deep red (xterm palette, light to dark).
_SHADES = (231, 224, 217, 210, 203, 196, 160, 124)


def _share(weight: float, weights: list[float]) -> float:
    """A weight relative to the sentence's largest, so short and long sentences shade alike."""
    return weight / max(max(weights), 1e-12)


def explain_terminal(prediction: Prediction, colour: bool = True) -> str:
    """`label (p)` then each word with its weight; with `colour`, shaded backgrounds."""
    weights = prediction.attention or []
    p = prediction.probabilities[prediction.label]
    words = []
    for token, weight in zip(prediction.tokens, weights, strict=True):
        if colour:
            shade = _SHADES[min(int(_share(weight, weights) * len(_SHADES)), len(_SHADES) - 1)]
            fg = 231 if shade in _SHADES[5:] else 16
            words.append(f"\x1b[48;5;{shade}m\x1b[38;5;{fg}m{token}\x1b[0m")
        else:
            words.append(f"{token}({weight:.2f})")
    lines = [f"{prediction.label} ({p:.3f})", " ".join(words)]
    if colour:  # the exact numbers too, one word a line
        lines += [f"  {weight:.3f}  {token}" for token, weight
                  in zip(prediction.tokens, weights, strict=True)]
    return "\n".join(lines)


def explain_html(predictions: list[Prediction]) -> str:
    """A standalone HTML page: one line per text, words shaded by their attention weight."""
    rows = []
    for pred in predictions:
        weights = pred.attention or []
        spans = "".join(
            f'<span title="{w:.4f}" style="background: rgba(220, 30, 30, '
            f'{_share(w, weights):.3f}); padding: 2px 3px">{html.escape(t)}</span> '
            for t, w in zip(pred.tokens, weights, strict=True))
        p = pred.probabilities[pred.label]
        rows.append(f"<p><b>{html.escape(pred.label)}</b> ({p:.3f}): {spans}</p>")
    body = "\n".join(rows)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>attention</title>"
            "</head>\n<body style=\"font-family: sans-serif; line-height: 2\">\n"
            f"{body}\n</body></html>\n")
