"""Data directory rule, corpus lookup errors, bundled fallback and checksums."""

import hashlib
from pathlib import Path

import pytest

from rnnlab.data import registry
from rnnlab.data.registry import (
    CORPORA,
    ENV_VAR,
    corpus_files,
    corpus_path,
    find_corpora,
    get_corpus,
    search_dirs,
    user_data_dir,
    verify,
)
from rnnlab.errors import RnnlabError

EXPECTED = {
    "tinyshakespeare", "ptb", "warpeace", "irish-abc", "wikitext-2", "sst2", "sst5", "mr",
    "ud-english-ewt", "conll2003", "multi30k", "aclimdb",
}


def test_registry_names_and_fields():
    assert set(CORPORA) == EXPECTED
    for info in CORPORA.values():
        assert info.task in {"lm", "classify", "tag", "translate"}
        assert (info.level is not None) == (info.task == "lm")
        listed = {f for files in info.splits.values() for f in files}
        assert listed <= set(info.files)
        assert info.sources, info.name
        assert {f for s in info.sources for f in s.files} in [set(fs) for fs in info.file_sets]
        for digest in info.sha256.values():
            assert digest is None or len(digest) == 64
    assert get_corpus("mr").encoding == "latin-1"


def test_checksums_match_shared_list():
    """The registry's sha256 agree with shared/data/checksums.sha256, where it exists."""
    listing = registry._REPO_ROOT.parent / "shared" / "data" / "checksums.sha256"
    if not listing.is_file():
        pytest.skip("no shared data directory beside the checkout")
    for line in listing.read_text().splitlines():
        digest, rel = line.split()
        folder, fname = rel.split("/")
        assert CORPORA[folder].sha256[fname] == digest


def test_unknown_corpus_lists_names():
    with pytest.raises(RnnlabError) as err:
        get_corpus("ptbb")
    msg = str(err.value)
    assert "unknown corpus 'ptbb'" in msg and "did you mean 'ptb'?" in msg
    assert all(name in msg for name in EXPECTED)


def test_search_dirs_rule(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert search_dirs(tmp_path / "arg") == [(tmp_path / "arg", "--data-dir")]
    assert search_dirs() == [(tmp_path / "env", f"${ENV_VAR}")]
    monkeypatch.setenv(ENV_VAR, "")  # empty means unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dirs = [p for p, _ in search_dirs()]
    assert dirs[0] == tmp_path / "cache" / "rnnlab" / "data"  # the user data folder first
    assert dirs[1] == Path(registry.__file__).resolve().parents[3].parent / "shared" / "data"
    assert registry.download_dir() == (dirs[0], "the user data folder")  # never the checkout
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")  # the XDG rule
    assert user_data_dir() == Path.home() / ".cache" / "rnnlab" / "data"


def test_missing_corpus_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(RnnlabError) as err:
        corpus_path("ptb")
    msg = str(err.value)
    assert f"{tmp_path / 'ptb'} ($RNNLAB_DATA: no such folder)" in msg
    assert "rnnlab data download ptb" in msg and "--data-dir" in msg and ENV_VAR in msg
    assert "ptb/ptb.train.txt" in msg


def test_incomplete_corpus_names_missing_files(tmp_path):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.train.txt").write_text("a b\n")
    with pytest.raises(RnnlabError, match=r"--data-dir: missing ptb\.valid\.txt, ptb\.test\.txt"):
        corpus_path("ptb", tmp_path)


def test_found_corpus_and_find_corpora(tmp_path):
    (tmp_path / "irish-abc").mkdir()
    (tmp_path / "irish-abc" / "irish.abc").write_text("X:1\n")
    assert corpus_path("irish-abc", tmp_path) == tmp_path / "irish-abc"
    found = find_corpora(tmp_path)
    assert set(found) == EXPECTED
    assert found["irish-abc"] == tmp_path / "irish-abc"
    assert found["ptb"] is None
    assert found["tinyshakespeare"] == registry.BUNDLED_DIR / "tinyshakespeare.txt.gz"


def test_tinyshakespeare_falls_back_to_bundled(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    files = corpus_files("tinyshakespeare")
    assert files == {"input.txt": registry.BUNDLED_DIR / "tinyshakespeare.txt.gz"}
    assert verify("tinyshakespeare") == {"input.txt": "ok"}  # checks the decompressed text
    with pytest.raises(RnnlabError, match="not found"):
        corpus_files("warpeace")  # no fallback for the others


def test_verify_ok_mismatch_and_unknown(tmp_path):
    folder = tmp_path / "irish-abc"
    folder.mkdir()
    (folder / "irish.abc").write_bytes(b"X:1\nnot the real file\n")
    with pytest.raises(RnnlabError, match="failed verification.*irish.abc has sha256"):
        verify("irish-abc", tmp_path)
    wt = tmp_path / "wikitext-2"
    wt.mkdir()
    for split in ("train", "valid", "test"):
        (wt / f"wiki.{split}.tokens").write_text(" = A = \n")
    assert set(verify("wikitext-2", tmp_path).values()) == {"unknown"}


def test_verify_real_small_file():
    try:
        path = corpus_path("irish-abc")
    except RnnlabError:
        pytest.skip("irish-abc not in the data directory")
    assert verify("irish-abc", path.parent) == {"irish.abc": "ok"}
    digest = hashlib.sha256((path / "irish.abc").read_bytes()).hexdigest()
    assert digest == CORPORA["irish-abc"].sha256["irish.abc"]
