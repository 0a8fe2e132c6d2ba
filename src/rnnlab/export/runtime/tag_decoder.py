"""Run an exported rnnlab tagger with onnxruntime and NumPy alone (no rnnlab, no torch).

    python tag_decoder.py EXPORT_DIR < sentences.txt     # one sentence a line, words by spaces

or from Python:

    from tag_decoder import Tagger
    tagger = Tagger("EXPORT_DIR")
    tagger.tag([["EU", "rejects", "German", "call"]])   # -> [["B-ORG", "O", "B-MISC", "O"]]

The graph `tagger.onnx` gives the emission scores e_t(y) of every word (B, T, K). With a CRF
output layer (crf.json) the tags are the highest-scoring path (Viterbi):

    s(y) = start(y_1) + sum_t e_t(y_t) + sum_{t>=2} A(y_{t-1}, y_t) + end(y_n)
    delta_1(j) = start(j) + e_1(j)
    delta_t(j) = max_i [delta_{t-1}(i) + A(i, j)] + e_t(j),   psi_t(j) = the argmax i
    y_n = argmax_j [delta_n(j) + end(j)],   y_{t-1} = psi_t(y_t)

Moves the tag scheme forbids (BIO: O -> I-X, ...) are false in crf.json's `allowed_*` and score
-inf, so they are never chosen. Without a CRF each word takes its highest-scoring tag.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

PAD, UNK = 0, 1  # vocabulary ids of <pad> and <unk> (rnnlab's vocabularies start with them)
_DIGIT = re.compile(r"\d")


def viterbi(emissions: np.ndarray, start: np.ndarray, transitions: np.ndarray,
            end: np.ndarray) -> list[int]:
    """The best tag path of one sentence: emissions (n, K), start (K,), transitions (K, K)
    [from, to], end (K,) -> n tag ids."""
    score = start + emissions[0]  # delta_1 (K,)
    pointers = []
    for t in range(1, emissions.shape[0]):
        candidates = score[:, None] + transitions  # (K previous, K next)
        pointers.append(candidates.argmax(axis=0))  # psi_t (K,)
        score = candidates.max(axis=0) + emissions[t]  # delta_t (K,)
    best = [int((score + end).argmax())]
    for psi in reversed(pointers):
        best.append(int(psi[best[-1]]))
    return best[::-1]


class Tagger:
    """An exported tagger: encode words, run the graph, decode the tags."""

    def __init__(self, export_dir: str | Path) -> None:
        import onnxruntime

        root = Path(export_dir)
        self.meta = json.loads((root / "meta.json").read_text("utf-8"))
        self.words = {w: i for i, w in enumerate(_itos(root / "vocab.json"))}
        self.chars = {c: i for i, c in enumerate(_itos(root / "chars.json"))}
        self.tags = json.loads((root / "tags.json").read_text("utf-8"))
        self.crf = None
        if (root / "crf.json").exists():
            crf = json.loads((root / "crf.json").read_text("utf-8"))
            self.crf = tuple(np.where(np.array(crf["allowed_" + k]), np.array(crf[k]), -np.inf)
                             for k in ("start", "transitions", "end"))
        graph = self.meta["graphs"][0]
        self.session = onnxruntime.InferenceSession(str(root / graph),
                                                    providers=["CPUExecutionProvider"])

    def _key(self, word: str) -> str:
        """The form a word is looked up by (its characters keep their case and digits)."""
        if self.meta["lowercase"]:
            word = word.lower()
        return _DIGIT.sub("0", word) if self.meta["zero_digits"] else word

    def encode(self, sentences: list[list[str]]) -> dict[str, np.ndarray]:
        """Padded arrays: words (B, T), chars (B, T, C), char_lengths (B, T), lengths (B,)."""
        steps = max(len(s) for s in sentences)
        width = max(len(w) for s in sentences for w in s)
        words = np.zeros((len(sentences), steps), dtype=np.int64)
        chars = np.zeros((len(sentences), steps, width), dtype=np.int64)
        char_lengths = np.zeros((len(sentences), steps), dtype=np.int64)
        for b, sentence in enumerate(sentences):
            for t, word in enumerate(sentence):
                words[b, t] = self.words.get(self._key(word), UNK)
                chars[b, t, : len(word)] = [self.chars.get(c, UNK) for c in word]
                char_lengths[b, t] = len(word)
        lengths = np.array([len(s) for s in sentences], dtype=np.int64)
        return {"words": words, "chars": chars, "char_lengths": char_lengths, "lengths": lengths}

    def emissions(self, sentences: list[list[str]]) -> np.ndarray:
        """Tag scores of every word, (B, T, K)."""
        return self.session.run(["emissions"], self.encode(sentences))[0]

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        if any(not s or any(not w for w in s) for s in sentences):
            raise ValueError("every sentence needs at least one word, and no word is empty")
        scores = self.emissions(sentences)
        result = []
        for row, sentence in zip(scores, sentences, strict=True):
            row = row[: len(sentence)]
            path = viterbi(row, *self.crf) if self.crf else row.argmax(axis=1).tolist()
            result.append([self.tags[i] for i in path])
        return result


def _itos(path: Path) -> list[str]:
    return json.loads(path.read_text("utf-8"))["itos"]


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python tag_decoder.py EXPORT_DIR < sentences.txt\n")
        return 2
    tagger = Tagger(sys.argv[1])
    sentences = [line.split() for line in sys.stdin if line.strip()]
    for sentence, tags in zip(sentences, tagger.tag(sentences) if sentences else [],
                              strict=True):
        sys.stdout.write(" ".join(f"{w}/{t}" for w, t in zip(sentence, tags, strict=True)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
