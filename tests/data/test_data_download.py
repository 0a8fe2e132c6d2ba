"""download(): a generated wikitext-2 zip served by a local HTTP server, file:// URLs, .gz and
.tar.gz sources, checksum mismatch and network failure. The registry's checksums are patched to
those of the generated files; nothing leaves 127.0.0.1."""

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import zipfile

import pytest

from rnnlab.data import registry
from rnnlab.data.download import download
from rnnlab.data.lm_corpus import load_lm_corpus
from rnnlab.data.registry import CorpusInfo, Source
from rnnlab.errors import RnnlabError

WT2 = ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wikitext_files() -> dict[str, bytes]:
    body = " \n = Title = \n \n the cat sat on the mat . \n the dog sat . \n"
    return {name: (body * (20 if "train" in name else 3)).encode() for name in WT2}


def _wikitext_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # laid out as Salesforce's zip: one top folder
        zf.writestr("wikitext-2/", "")
        for name, data in files.items():
            zf.writestr(f"wikitext-2/{name}", data)
    return buf.getvalue()


@pytest.fixture()
def server(tmp_path):
    """Serve tmp_path/www over HTTP on 127.0.0.1; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def _patch_wikitext(monkeypatch, zip_sha, files):
    info = registry.CORPORA["wikitext-2"]
    source = dataclasses.replace(info.sources[0], sha256=zip_sha)
    patched = dataclasses.replace(info, sources=(source,),
                                  sha256={n: _sha(d) for n, d in files.items()})
    monkeypatch.setitem(registry.CORPORA, "wikitext-2", patched)


def test_wikitext2_zip_over_http(server, tmp_path, monkeypatch):
    www, base = server
    files = _wikitext_files()
    archive = _wikitext_zip(files)
    (www / "wikitext-2-v1.zip").write_bytes(archive)
    _patch_wikitext(monkeypatch, _sha(archive), files)
    data = tmp_path / "data"
    paths = download("wikitext-2", data, url=base)
    assert paths == [data / "wikitext-2" / n for n in WT2]
    assert {p.name: p.read_bytes() for p in paths} == files
    assert sorted(p.name for p in (data / "wikitext-2").iterdir()) == sorted(WT2)  # no temp
    corpus = load_lm_corpus("wikitext-2", data)
    assert int((corpus.train == corpus.vocab.eos_id).sum()) == 20 * 5
    # present and verified: kept without fetching (the URL is now dead)
    assert download("wikitext-2", data, url="http://127.0.0.1:9") == paths


def test_download_goes_to_the_user_data_folder(server, tmp_path, monkeypatch):
    """Without --data-dir or $RNNLAB_DATA: the per-user folder, where lookups find it."""
    www, base = server
    files = _wikitext_files()
    archive = _wikitext_zip(files)
    (www / "wikitext-2-v1.zip").write_bytes(archive)
    _patch_wikitext(monkeypatch, _sha(archive), files)
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    paths = download("wikitext-2", url=base)
    assert paths[0].parent == tmp_path / "cache" / "rnnlab" / "data" / "wikitext-2"
    assert registry.corpus_path("wikitext-2") == paths[0].parent


def test_checksum_mismatch_removes_partial_file(server, tmp_path, monkeypatch):
    www, base = server
    files = _wikitext_files()
    (www / "wikitext-2-v1.zip").write_bytes(_wikitext_zip(files))
    _patch_wikitext(monkeypatch, "0" * 64, files)
    data = tmp_path / "data"
    with pytest.raises(RnnlabError) as err:
        download("wikitext-2", data, url=base)
    msg = str(err.value)
    assert "checksum mismatch for wikitext-2-v1.zip" in msg and "expected 0000" in msg
    assert "partial file was removed" in msg
    assert not data.exists()  # no empty folder left behind (issue 19)
    assert f"into {data / 'wikitext-2'}" in msg and "wiki.train.tokens" in msg


def test_unpacked_file_checksum_mismatch(server, tmp_path, monkeypatch):
    www, base = server
    files = _wikitext_files()
    archive = _wikitext_zip(files)
    (www / "wikitext-2-v1.zip").write_bytes(archive)
    _patch_wikitext(monkeypatch, _sha(archive), {**files, "wiki.test.tokens": b"other"})
    with pytest.raises(RnnlabError, match="checksum mismatch for wiki.test.tokens"):
        download("wikitext-2", tmp_path / "data", url=base)
    assert not (tmp_path / "data" / "wikitext-2" / "wiki.test.tokens").exists()


def test_plain_file_url_with_data_dir_from_env(tmp_path, monkeypatch):
    src = tmp_path / "mirror"
    src.mkdir()
    text = b"X:1\nT:Tune\nK:D\nabc|\n"
    (src / "irish.abc").write_bytes(text)
    info = registry.CORPORA["irish-abc"]
    monkeypatch.setitem(registry.CORPORA, "irish-abc",
                        dataclasses.replace(info, sha256={"irish.abc": _sha(text)}))
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "env-data"))
    (path,) = download("irish-abc", url=src.as_uri())  # file:// URL, data dir from the env
    assert path == tmp_path / "env-data" / "irish-abc" / "irish.abc"
    assert path.read_bytes() == text


def test_gz_and_tar_gz_sources(tmp_path, monkeypatch):
    src = tmp_path / "mirror"
    src.mkdir()
    a, b = b"first file\n", b"second file\n"
    (src / "a.txt.gz").write_bytes(gzip.compress(a))
    with tarfile.open(src / "b.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("pack/inner/b-source.txt")
        info.size = len(b)
        tf.addfile(info, io.BytesIO(b))
    toy = CorpusInfo(
        "toy", "lm", "char", "generated", {"train": ("a.txt",), "valid": ("b.txt",)},
        {"a.txt": _sha(a), "b.txt": _sha(b)},
        (Source("https://example.invalid/x/a.txt.gz", ("a.txt",)),
         Source("https://example.invalid/y/b.tar.gz", ("b.txt",), members=("b-source.txt",))),
    )
    monkeypatch.setitem(registry.CORPORA, "toy", toy)
    paths = download("toy", tmp_path / "data", url=src.as_uri())
    assert [p.read_bytes() for p in paths] == [a, b]


def test_network_failure_is_clear(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RnnlabError, match=r"could not download http://127\.0\.0\.1:\d+/"):
        download("ptb", tmp_path, url=f"http://127.0.0.1:{port}", timeout=5)
    assert not (tmp_path / "ptb").exists()  # no empty folder left behind (issue 19)


def test_http_404_is_clear(server, tmp_path):
    _, base = server
    with pytest.raises(RnnlabError, match="could not download .*ptb.train.txt: HTTP 404"):
        download("ptb", tmp_path, url=base)


def test_not_a_zip(server, tmp_path, monkeypatch):
    www, base = server
    (www / "wikitext-2-v1.zip").write_bytes(b"<html>an error page saved as a zip</html>")
    _patch_wikitext(monkeypatch, None, dict.fromkeys(WT2, b""))
    with pytest.raises(RnnlabError, match="not a valid zip archive"):
        download("wikitext-2", tmp_path, url=base)


def test_aclimdb_official_archive_is_kept_packed_and_read_as_is(tmp_path, monkeypatch):
    """`rnnlab data download aclimdb` stores aclImdb_v1.tar.gz as fetched (checked, not
    unpacked), the registry then finds the corpus, and the reader streams that file."""
    from rnnlab.data.aclimdb import read_aclimdb
    from rnnlab.data.registry import corpus_files, verify

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {"aclImdb/train/pos/0_9.txt": b"Great.",
                           "aclImdb/train/neg/0_2.txt": b"Bad.",
                           "aclImdb/train/urls_pos.txt": b"http://www.imdb.com/title/tt1/",
                           "aclImdb/train/urls_neg.txt": b"http://www.imdb.com/title/tt2/"
                           }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    archive = buf.getvalue()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "aclImdb_v1.tar.gz").write_bytes(archive)
    info = registry.CORPORA["aclimdb"]
    source = dataclasses.replace(info.sources[0], sha256=_sha(archive))
    monkeypatch.setitem(registry.CORPORA, "aclimdb", dataclasses.replace(
        info, sources=(source,), alternatives=({"aclImdb_v1.tar.gz": _sha(archive)},)))
    paths = download("aclimdb", tmp_path / "data", url=(tmp_path / "www").as_uri())
    assert paths == [tmp_path / "data" / "aclimdb" / "aclImdb_v1.tar.gz"]
    assert paths[0].read_bytes() == archive
    assert sorted(p.name for p in (tmp_path / "data" / "aclimdb").iterdir()) == [
        "aclImdb_v1.tar.gz"]
    assert corpus_files("aclimdb", tmp_path / "data") == {"aclImdb_v1.tar.gz": paths[0]}
    assert verify("aclimdb", tmp_path / "data") == {"aclImdb_v1.tar.gz": "ok"}
    assert [r.text for r in read_aclimdb(paths[0], splits=("train",))["train"]] == [
        "Bad.", "Great."]
