"""Vocabulary: tokens <-> ids, with the four specials every task shares, saved as JSON."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from rnnlab.errors import RnnlabError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    """Ids 0..3 are always <pad> <unk> <bos> <eos>; the rest follow by frequency, then text."""

    def __init__(self, tokens: Sequence[str]) -> None:
        itos = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        if len(set(itos)) != len(itos):
            raise RnnlabError("vocabulary has duplicate tokens")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    @classmethod
    def build(
        cls, tokens: Iterable[str], min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Keep tokens seen at least `min_freq` times, the `max_size` most frequent at most
        (specials not counted); ties are broken alphabetically so the result is deterministic."""
        counts = Counter(tokens)
        for special in SPECIALS:
            counts.pop(special, None)
        kept = [t for t, n in counts.items() if n >= min_freq]
        kept.sort(key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Unknown tokens map to <unk>."""
        stoi, unk = self.stoi, self.unk_id
        return [stoi.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def to_json(self) -> dict:
        return {"itos": self.itos}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False) + "\n", "utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        try:
            itos = json.loads(Path(path).read_text("utf-8"))["itos"]
        except (OSError, ValueError, KeyError) as err:
            raise RnnlabError(f"cannot read vocabulary {path}: {err}") from err
        if list(itos[: len(SPECIALS)]) != list(SPECIALS):
            raise RnnlabError(f"vocabulary {path} does not start with {' '.join(SPECIALS)}")
        return cls(itos[len(SPECIALS) :])
