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


# -- documents (hierarchical attention): both levels ---------------------------------------------
# As in Yang et al. (2016)'s figure 5: a sentence's weight shades the sentence (red), a word's
# weight inside its sentence marks the word (blue; here an underline, so both stay readable).


def _shade(share: float) -> int:
    return _SHADES[min(int(share * len(_SHADES)), len(_SHADES) - 1)]


def explain_document_terminal(prediction: Prediction, colour: bool = True) -> str:
    """`label (p)`, then one line per sentence: its weight, then each word with its weight
    (with `colour`: the sentence's weight as a shaded box, words shaded by their weight)."""
    p = prediction.probabilities[prediction.label]
    lines = [f"{prediction.label} ({p:.3f})"]
    sentence_weights = prediction.sentence_attention or []
    for words, weight, word_weights in zip(prediction.sentences or [], sentence_weights,
                                           prediction.word_attention or [], strict=True):
        if colour:
            box = _shade(_share(weight, sentence_weights))
            fg = 231 if box in _SHADES[5:] else 16
            marked = " ".join(
                f"\x1b[48;5;{_shade(_share(w, word_weights))}m{t}\x1b[0m"
                for t, w in zip(words, word_weights, strict=True))
            lines.append(f"\x1b[48;5;{box}m\x1b[38;5;{fg}m {weight:.3f} \x1b[0m {marked}")
            lines.append("        " + " ".join(f"{t}({w:.2f})" for t, w
                                                in zip(words, word_weights, strict=True)))
        else:
            lines.append(f"{weight:.3f}  " + " ".join(
                f"{t}({w:.2f})" for t, w in zip(words, word_weights, strict=True)))
    return "\n".join(lines)


def explain_document_html(predictions: list[Prediction]) -> str:
    """A standalone page: per document, each sentence on a background shaded by its weight,
    each word underlined (thicker, darker) by its weight within the sentence."""
    blocks = []
    for pred in predictions:
        sentence_weights = pred.sentence_attention or []
        rows = []
        for words, weight, word_weights in zip(pred.sentences or [], sentence_weights,
                                               pred.word_attention or [], strict=True):
            spans = " ".join(
                f'<span title="{w:.4f}" style="text-decoration: underline; '
                f'text-decoration-color: rgba(30, 60, 220, {_share(w, word_weights):.3f}); '
                f'text-decoration-thickness: {1 + 4 * _share(w, word_weights):.1f}px">'
                f"{html.escape(t)}</span>"
                for t, w in zip(words, word_weights, strict=True))
            rows.append(f'<div class="sentence" title="{weight:.4f}" style="background: '
                        f'rgba(220, 30, 30, {0.6 * _share(weight, sentence_weights):.3f}); '
                        f'padding: 2px 6px"><small>{weight:.3f}</small> {spans}</div>')
        p = pred.probabilities[pred.label]
        blocks.append(f"<section><p><b>{html.escape(pred.label)}</b> ({p:.3f})</p>\n"
                      + "\n".join(rows) + "</section>")
    body = "\n<hr>\n".join(blocks)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hierarchical "
            "attention</title></head>\n<body style=\"font-family: sans-serif; line-height: "
            f"2\">\n{body}\n</body></html>\n")
