"""read_text's error messages and newline normalisation, on tiny files made here."""

import gzip

import pytest

from rnnlab.data.io import NewlineFix, normalise_newlines, read_text, sha256_file
from rnnlab.errors import RnnlabError


def test_reads_utf8(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("héllo\n", encoding="utf-8")
    assert read_text(path) == "héllo\n"


def test_missing_file(tmp_path):
    with pytest.raises(RnnlabError, match=r"nope\.txt: file not found"):
        read_text(tmp_path / "nope.txt")


def test_directory(tmp_path):
    with pytest.raises(RnnlabError, match="is a directory, not a file"):
        read_text(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(RnnlabError, match=r"empty\.txt is empty"):
        read_text(path)


def test_not_utf8_names_byte_and_offset(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"a" * 1234 + b"\xff" + b"tail")
    with pytest.raises(RnnlabError) as err:
        read_text(path)
    assert f"{path} is not UTF-8: invalid byte 0xff at byte offset 1234" in str(err.value)


def test_latin1_option(tmp_path):
    path = tmp_path / "mr.txt"
    path.write_bytes(b"caf\xe9 \x85\n")
    assert read_text(path, encoding="latin-1") == "caf\xe9 \x85\n"


def test_unknown_encoding(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a")
    with pytest.raises(RnnlabError, match="unknown text encoding"):
        read_text(path, encoding="no-such-codec")


def test_reads_gzip_transparently(tmp_path):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(b"zipped\n"))
    assert read_text(path) == "zipped\n"


def test_bad_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(RnnlabError, match="not a valid gzip file"):
        read_text(path)


@pytest.mark.parametrize(
    ("raw", "clean", "fix", "said"),
    [
        ("a\nb\n", "a\nb\n", NewlineFix(), ""),
        ("\ufeffa\r\nb\r\n", "a\nb\n", NewlineFix(bom=True, crlf=2),
         "removed a BOM and converted 2 CRLF line ends to LF"),
        ("a\rb\r\nc", "a\nb\nc", NewlineFix(crlf=1, cr=1),
         "converted 1 CRLF and 1 CR line ends to LF"),
        ("\ufeffx", "x", NewlineFix(bom=True), "removed a BOM"),
        ("a\ufeffb", "a\ufeffb", NewlineFix(), ""),  # only a leading BOM is one
    ],
)
def test_normalise_newlines(raw, clean, fix, said):
    text, got = normalise_newlines(raw)
    assert text == clean
    assert got == fix
    assert got.describe() == said
    assert got.changed == bool(said)


def test_sha256_file(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
