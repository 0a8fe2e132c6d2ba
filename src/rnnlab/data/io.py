"""Reading text files with errors a user can act on, and newline clean-up.

Every corpus goes through `read_text`, so a missing file, a folder given where a file was
expected, an empty file or a file in the wrong encoding all end in one clear `RnnlabError`
instead of a traceback from deep inside a loader. Files ending in `.gz` are read transparently
(the bundled tinyshakespeare is one), so callers never care how a text is stored.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

from rnnlab.errors import RnnlabError

BOM = "\ufeff"
_CHUNK = 1 << 20


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes (decompressed for `.gz`), or an `RnnlabError` saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise RnnlabError(f"{path}: file not found")
    if path.is_dir():
        raise RnnlabError(f"{path} is a directory, not a file")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise RnnlabError(f"{path} is not a valid gzip file: {err}") from err
    except OSError as err:
        raise RnnlabError(f"cannot read {path}: {err.strerror or err}") from err
    if not data:
        raise RnnlabError(f"{path} is empty")
    return data


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read a whole text file.

    Decoding is strict: a stray byte is reported with its offset rather than silently turned
    into U+FFFD, because a corrupted or mis-encoded corpus should be noticed before training on
    it. Single-byte corpora (the MR sentence-polarity files) pass `encoding="latin-1"`.
    A UTF-8 BOM is kept; `normalise_newlines` removes it and reports that it did.
    """
    data = read_bytes(path)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        bad = data[err.start : err.start + 1].hex()
        raise RnnlabError(
            f"{path} is not {_pretty(encoding)}: invalid byte 0x{bad} at byte offset "
            f"{err.start}; convert it to UTF-8 or read it with its own encoding "
            f"(e.g. encoding='latin-1')"
        ) from err
    except LookupError as err:
        raise RnnlabError(f"unknown text encoding {encoding!r} for {path}") from err


def _pretty(encoding: str) -> str:
    return "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


@dataclass(frozen=True)
class NewlineFix:
    """What `normalise_newlines` changed, so the loader can tell the user."""

    bom: bool = False  # a leading UTF-8 byte-order mark was removed
    crlf: int = 0  # CRLF line ends turned into LF
    cr: int = 0  # lone CR line ends (old Mac files) turned into LF

    @property
    def changed(self) -> bool:
        return self.bom or self.crlf > 0 or self.cr > 0

    def describe(self) -> str:
        """E.g. 'removed a BOM and converted 12345 CRLF line ends to LF' ('' if unchanged)."""
        parts = ["removed a BOM"] if self.bom else []
        ends = [f"{n} {kind}" for n, kind in ((self.crlf, "CRLF"), (self.cr, "CR")) if n]
        if ends:
            parts.append(f"converted {' and '.join(ends)} line ends to LF")
        return " and ".join(parts)


def normalise_newlines(text: str) -> tuple[str, NewlineFix]:
    """Strip a leading BOM and turn CRLF / CR line ends into LF.

    Why: a BOM would become a token of its own and CR a character the model must learn to
    predict before every newline (warpeace is published with both). Returns the cleaned text
    and a `NewlineFix` saying what changed.
    """
    bom = text.startswith(BOM)
    if bom:
        text = text[1:]
    crlf = text.count("\r\n")
    if crlf:
        text = text.replace("\r\n", "\n")
    cr = text.count("\r")
    if cr:
        text = text.replace("\r", "\n")
    return text, NewlineFix(bom=bom, crlf=crlf, cr=cr)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes as stored (a `.gz` is hashed compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
