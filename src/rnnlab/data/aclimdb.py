"""The IMDB Large Movie Review Dataset (Maas et al. 2011): reviews with ids, ratings, labels and
the movie each one is about, read from the unpacked `aclImdb/` folder or from a tarball as it
is (the shared `aclImdb-labelled.tar.gz` or the official `aclImdb_v1.tar.gz`).

A tarball is streamed (gzip + `tarfile.open(mode="r|")`): members are read in archive order and
never written anywhere, so 50,000 small files cost one pass of gunzip and no temporary copy.
Because a stream cannot seek back, reviews and the `urls_{pos,neg}.txt` files are collected in
whatever order the archive holds them and joined at the end. The unlabelled `train/unsup/`,
the `.feat` files and the README of the official archive are skipped.

Layout (the same in the folder and both archives): `aclImdb/{train,test}/{pos,neg}/ID_RATING.txt`,
one review per file; line ID of `aclImdb/{train,test}/urls_{pos,neg}.txt` is the IMDb page of
review ID's movie. There is no dev split: `movie_split` holds out whole movies, so that no
movie's reviews are on both sides (reviews of one film share names and plot words).
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnlab.errors import RnnlabError

SPLITS = ("train", "test")
LABELS = ("neg", "pos")
SHARED_ARCHIVE = "aclImdb-labelled.tar.gz"
OFFICIAL_ARCHIVE = "aclImdb_v1.tar.gz"
ARCHIVES = (SHARED_ARCHIVE, OFFICIAL_ARCHIVE)

_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_URLS = re.compile(r"(?:^|/)aclImdb/(train|test)/urls_(pos|neg)\.txt$")
_MOVIE = re.compile(r"tt\d+")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Review:
    split: str  # "train" | "test"
    label: str  # "neg" | "pos"
    id: int  # 0..12,499 within its split and label
    rating: int  # 1-4 (neg) or 7-10 (pos) stars
    url: str  # the IMDb page of the movie
    text: str  # raw, with the `<br />` paragraph marks

    @property
    def movie(self) -> str:
        """The IMDb title id (`tt0406816`), or the url where it has none."""
        found = _MOVIE.search(self.url)
        return found.group(0) if found else self.url

    @property
    def where(self) -> str:
        """The member path, for error messages."""
        return f"aclImdb/{self.split}/{self.label}/{self.id}_{self.rating}.txt"


def find_root(path: str | Path) -> Path:
    """The file or folder to read inside `path`: an archive itself, an `aclImdb/` folder
    (one holding `train/`), a folder holding `aclImdb/`, or a folder holding one of the
    archives (the shared one first)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise RnnlabError(f"{path}: no such file or folder")
    if (path / "train").is_dir():
        return path
    if (path / "aclImdb" / "train").is_dir():
        return path / "aclImdb"
    for name in ARCHIVES:
        if (path / name).is_file():
            return path / name
    raise RnnlabError(f"{path} holds neither aclImdb/ nor {' nor '.join(ARCHIVES)}")


def read_aclimdb(path: str | Path, splits: tuple[str, ...] = SPLITS) -> dict[str, list[Review]]:
    """Split -> its reviews (neg then pos, each by id), from a folder or an archive."""
    root = find_root(path)
    texts: dict[tuple[str, str, int], tuple[int, bytes]] = {}
    urls: dict[tuple[str, str], list[str]] = {}
    members = _folder_members(root) if root.is_dir() else _archive_members(root)
    for name, read in members:
        if found := _REVIEW.search(name):
            split, label, number, rating = found.groups()
            if split in splits:
                texts[split, label, int(number)] = (int(rating), read())
        elif found := _URLS.search(name):
            split, label = found.groups()
            if split in splits:
                urls[split, label] = read().decode("ascii", "replace").splitlines()
    return {split: _join(root, split, texts, urls) for split in splits}


def _folder_members(root: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    for split in SPLITS:
        for label in LABELS:
            urls = root / split / f"urls_{label}.txt"
            if urls.is_file():
                yield f"aclImdb/{split}/urls_{label}.txt", urls.read_bytes
            folder = root / split / label
            if folder.is_dir():
                for file in folder.iterdir():
                    yield f"aclImdb/{split}/{label}/{file.name}", file.read_bytes


def _archive_members(archive: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(name, read) per regular member, streamed; a cut or corrupt archive is one clear line.

    The gzip layer is `gzip.GzipFile`, not tarfile's own "r|gz" stream, because tarfile's
    stream ends quietly where a cut file ends; GzipFile raises at a missing end-of-stream
    marker and checks the CRC, once the rest of the stream is drained after the last member.
    """
    try:
        with gzip.open(archive, "rb") as unzipped, \
                tarfile.open(fileobj=unzipped, mode="r|") as stream:
            for member in stream:
                if member.isfile() and (_REVIEW.search(member.name)
                                        or _URLS.search(member.name)):
                    data = stream.extractfile(member).read()
                    yield member.name, lambda data=data: data
            while unzipped.read(_CHUNK):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise RnnlabError(f"{archive}: truncated or corrupt archive ({err}); download it again "
                          "(`rnnlab data download aclimdb`) or check its sha256") from err


def _join(root: Path, split: str, texts: dict, urls: dict) -> list[Review]:
    reviews = []
    for label in LABELS:
        keys = sorted(k for k in texts if k[:2] == (split, label))
        if not keys:
            raise RnnlabError(f"{root}: no aclImdb/{split}/{label}/*.txt reviews")
        if (split, label) not in urls:
            raise RnnlabError(f"{root}: aclImdb/{split}/urls_{label}.txt is missing")
        movie_urls = urls[split, label]
        for key in keys:
            rating, data = texts[key]
            where = f"{root}: aclImdb/{split}/{label}/{key[2]}_{rating}.txt"
            if key[2] >= len(movie_urls):
                raise RnnlabError(f"{where} has no line in urls_{label}.txt "
                                  f"({len(movie_urls)} lines)")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise RnnlabError(f"{where} is not UTF-8 (byte offset {err.start})") from err
            reviews.append(Review(split, label, key[2], rating, movie_urls[key[2]].strip(),
                                  text))
    return reviews


def movie_split(reviews: list[Review], fraction: float, seed: int
                ) -> tuple[list[Review], list[Review]]:
    """(kept, held out): a seeded `fraction` of the movies, with all their reviews, held out.
    Movies are sorted before the permutation, so the split depends on the seed alone."""
    if not 0 < fraction < 1:
        raise RnnlabError(f"a held-out fraction must be between 0 and 1, got {fraction}")
    movies = sorted({r.movie for r in reviews})
    order = torch.randperm(len(movies), generator=torch.Generator().manual_seed(seed)).tolist()
    held = {movies[i] for i in order[: max(1, round(len(movies) * fraction))]}
    return ([r for r in reviews if r.movie not in held], [r for r in reviews if r.movie in held])
