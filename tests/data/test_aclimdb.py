"""The IMDB reader on a small generated corpus in the official layout: folder, tarball (either
name), a truncated archive, and the movie-level dev split."""

import io
import tarfile
from pathlib import Path

import pytest

from rnnlab.data.aclimdb import movie_split, read_aclimdb
from rnnlab.errors import RnnlabError

# (split, label) -> [(rating, movie, text)]; review id = position in the list.
REVIEWS = {
    ("train", "neg"): [(1, "tt01", "Awful.<br /><br />Truly bad."), (3, "tt02", "Dull film."),
                       (2, "tt01", "Bad acting. Worse plot!")],
    ("train", "pos"): [(10, "tt03", "Great! Loved it."), (8, "tt02", "Good fun, caf\u00e9 scene."),
                       (7, "tt04", "Nice.")],
    ("test", "neg"): [(4, "tt05", "Meh. Not good.")],
    ("test", "pos"): [(9, "tt06", "Superb.")],
}


def url(movie: str) -> str:
    return f"http://www.imdb.com/title/{movie}/usercomments"


def layout() -> dict[str, bytes]:
    """Member path -> bytes, as in aclImdb_v1.tar.gz (with unsup/ and a README to skip)."""
    files = {"aclImdb/README": b"readme", "aclImdb/imdb.vocab": b"the\nfilm\n",
             "aclImdb/train/unsup/0_0.txt": b"unlabelled", "aclImdb/train/urls_unsup.txt": b"x"}
    for (split, label), rows in REVIEWS.items():
        lines = []
        for number, (rating, movie, text) in enumerate(rows):
            files[f"aclImdb/{split}/{label}/{number}_{rating}.txt"] = text.encode()
            lines.append(url(movie))
        files[f"aclImdb/{split}/urls_{label}.txt"] = "\n".join(lines).encode()
    return files


def write_tarball(path: Path, files: dict[str, bytes]) -> Path:
    # urls files first, then reviews in reverse: the reader must not rely on member order
    with tarfile.open(path, "w:gz") as tf:
        for name in sorted(files, key=lambda n: ("urls" not in n, n), reverse=True):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            tf.addfile(info, io.BytesIO(files[name]))
    return path


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def check(corpus: dict) -> None:
    assert {k: len(v) for k, v in corpus.items()} == {"train": 6, "test": 2}
    first = corpus["train"][0]
    assert (first.label, first.id, first.rating, first.movie) == ("neg", 0, 1, "tt01")
    assert first.text == "Awful.<br /><br />Truly bad."
    assert first.url == url("tt01")
    pos = [r for r in corpus["train"] if r.label == "pos"]
    assert [(r.id, r.rating, r.movie) for r in pos] == [(0, 10, "tt03"), (1, 8, "tt02"),
                                                          (2, 7, "tt04")]
    assert pos[1].text == "Good fun, caf\u00e9 scene."


@pytest.mark.parametrize("name", ["aclImdb_v1.tar.gz", "aclImdb-labelled.tar.gz"])
def test_tarball_and_folder_read_alike(tmp_path, name):
    files = layout()
    archive = write_tarball(tmp_path / name, files)
    folder = write_folder(tmp_path / "unpacked", files)
    from_archive, from_folder = read_aclimdb(archive), read_aclimdb(folder)
    check(from_archive)
    assert from_archive == from_folder
    assert read_aclimdb(folder / "aclImdb") == from_folder
    assert read_aclimdb(tmp_path) == from_archive  # a corpus folder holding the archive
    assert read_aclimdb(archive, splits=("test",)) == {"test": from_archive["test"]}


def test_truncated_archive_is_one_clear_error(tmp_path):
    archive = write_tarball(tmp_path / "aclImdb_v1.tar.gz", layout())
    cut = tmp_path / "cut" / "aclImdb_v1.tar.gz"
    cut.parent.mkdir()
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(RnnlabError, match="truncated or corrupt archive") as err:
        read_aclimdb(cut)
    assert "\n" not in str(err.value)


def test_missing_urls_and_bad_bytes(tmp_path):
    files = layout()
    del files["aclImdb/train/urls_pos.txt"]
    with pytest.raises(RnnlabError, match="urls_pos.txt is missing"):
        read_aclimdb(write_folder(tmp_path / "a", files))
    files = layout()
    files["aclImdb/train/pos/1_8.txt"] = b"caf\xe9"
    with pytest.raises(RnnlabError, match=r"1_8.txt is not UTF-8"):
        read_aclimdb(write_folder(tmp_path / "b", files))


def test_movie_split_keeps_each_movie_on_one_side(tmp_path):
    reviews = read_aclimdb(write_folder(tmp_path, layout()))["train"]
    for seed in range(20):
        kept, held = movie_split(reviews, 0.25, seed)
        assert len(kept) + len(held) == len(reviews) and held
        assert not {r.movie for r in kept} & {r.movie for r in held}
        assert len({r.movie for r in held}) == 1  # 25% of 4 movies
        assert movie_split(reviews, 0.25, seed) == (kept, held)  # fixed by the seed
    assert len({tuple(r.movie for r in movie_split(reviews, 0.25, s)[1]) for s in range(20)}) > 1
    with pytest.raises(RnnlabError):
        movie_split(reviews, 1.0, 0)
