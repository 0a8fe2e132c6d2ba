"""Fetch a named corpus into the data directory: `rnnlab data download NAME`.

Every file is written to a temporary name in its final folder and renamed only once complete
and checked (`os.replace` is atomic on one file system), so an interrupted or corrupted
download never leaves a file that looks like a good corpus. Checksums are verified whenever
the registry knows them, for the fetched file and for each unpacked file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from rnnlab.data.registry import ENV_VAR, CorpusInfo, Source, download_dir, get_corpus, verify
from rnnlab.errors import RnnlabError

_CHUNK = 1 << 20
_USER_AGENT = "rnnlab (https://pypi.org/project/rnnlab)"


def download(
    name: str,
    data_dir: str | Path | None = None,
    url: str | None = None,
    *,
    force: bool = False,
    timeout: float = 60.0,
) -> list[Path]:
    """Download corpus `name` into `<data dir>/<name>/` and return its files' paths.

    The folder is `data_dir`, else $RNNLAB_DATA, else the user data folder
    (`registry.user_data_dir()`), never beside the checkout. `url` replaces the base of every
    source URL (each file is fetched from `url/<its file name>`): for mirrors and tests;
    `file://` works too. Files already present and matching their checksums are kept unless
    `force`. A download that fails leaves nothing behind: no partial file, none of the files
    this call wrote, no folder it created.
    """
    info = get_corpus(name)
    base, why = download_dir(data_dir)
    target = base / info.folder
    layout = ", ".join(str(target / f) for f in info.files)
    if not info.sources:
        raise RnnlabError(f"no download is known for {name}; put its files in place by hand: "
                          f"{layout}")
    paths = [target / f for source in info.sources for f in source.files]
    if not force and all(p.is_file() for p in paths):
        try:
            verify(name, target.parent)
            return paths
        except RnnlabError:
            pass  # a corrupted copy: fetch it again
    created = [folder for folder in (target, *target.parents) if not folder.exists()]
    before = {p for p in paths if p.exists()}
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RnnlabError(
            f"cannot create {target} ({why}): {err.strerror or err}; pass --data-dir or set "
            f"{ENV_VAR} to a folder you can write to"
        ) from err
    try:
        for source in info.sources:
            source_url = source.url
            if url is not None:
                source_url = url.rstrip("/") + "/" + PurePosixPath(source.url).name
            _fetch_source(info, source, source_url, target, timeout)
    except BaseException as err:
        _clean_up([p for p in paths if p not in before], created)
        if isinstance(err, RnnlabError):
            raise RnnlabError(f"{err} [download of {name} into {target} ({why}) failed and left "
                              f"nothing there; to place it by hand, put {layout}]") from err
        raise
    return paths


def _clean_up(written: list[Path], created: list[Path]) -> None:
    """Remove the files a failed download wrote, then the folders it created (deepest first)
    if they are empty."""
    for path in written:
        path.unlink(missing_ok=True)
    for folder in created:  # target first, then its new parents
        try:
            folder.rmdir()
        except OSError:
            break  # not empty (or not ours to remove): stop there


def _fetch_source(
    info: CorpusInfo, source: Source, url: str, target: Path, timeout: float
) -> None:
    kind = _archive_kind(url) if source.unpack else "plain"
    if kind == "plain":
        (fname,) = source.files
        with _open_url(url, timeout) as response:
            expected = info.sha256.get(fname) or source.sha256
            _write_atomic(target / fname, _chunks(response), expected, url)
        return
    archive = target / f".{PurePosixPath(url).name}.download"
    try:
        with _open_url(url, timeout) as response:
            _write_atomic(archive, _chunks(response), source.sha256, url,
                          label=PurePosixPath(url).name)
        _unpack(archive, kind, source, info, target)
    finally:
        archive.unlink(missing_ok=True)


def _archive_kind(url: str) -> str:
    name = PurePosixPath(url).name.lower()
    for suffix, kind in ((".zip", "zip"), (".tar.gz", "tar"), (".tgz", "tar"), (".gz", "gz")):
        if name.endswith(suffix):
            return kind
    return "plain"


def _open_url(url: str, timeout: float):
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        return urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        if isinstance(err, urllib.error.HTTPError):
            reason = f"HTTP {err.code} {reason}"
        raise RnnlabError(
            f"could not download {url}: {reason}; check the network connection, or fetch the "
            f"file yourself"
        ) from err


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _write_atomic(
    path: Path, chunks: Iterator[bytes], sha256: str | None, origin: str, label: str = ""
) -> None:
    """Write `chunks` to a temp file beside `path`, check the checksum, then rename.
    `label` names the file in messages (default: `path`'s name)."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                digest.update(chunk)
                f.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise RnnlabError(
                f"checksum mismatch for {label or path.name} from {origin}: sha256 "
                f"{digest.hexdigest()}, expected {sha256}; the partial file was removed "
                f"(try again, or check the URL)"
            )
        os.replace(tmp, path)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise RnnlabError(f"could not fetch {label or path.name} from {origin}: {err}") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _unpack(archive: Path, kind: str, source: Source, info: CorpusInfo, target: Path) -> None:
    """Write the archive's wanted members (matched by base name) as the corpus's files."""
    members = source.members or source.files
    if kind == "gz":
        (fname,) = source.files
        with gzip.open(archive, "rb") as stream:
            _write_atomic(target / fname, _chunks(stream), info.sha256.get(fname), archive.name)
        return
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                names = {PurePosixPath(n).name: n for n in zf.namelist() if not n.endswith("/")}
                for member, fname in zip(members, source.files, strict=True):
                    _need(member, names, source.url)
                    with zf.open(names[member]) as stream:
                        _write_atomic(target / fname, _chunks(stream), info.sha256.get(fname),
                                      source.url)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                names = {PurePosixPath(m.name).name: m for m in tf.getmembers() if m.isfile()}
                for member, fname in zip(members, source.files, strict=True):
                    _need(member, names, source.url)
                    with tf.extractfile(names[member]) as stream:
                        _write_atomic(target / fname, _chunks(stream), info.sha256.get(fname),
                                      source.url)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise RnnlabError(f"{source.url} is not a valid {kind} archive: {err}") from err


def _need(member: str, names: dict, url: str) -> None:
    if member not in names:
        raise RnnlabError(f"{url} has no file named {member}; is it the right archive?")

