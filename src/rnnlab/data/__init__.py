"""Data: corpora registry, reading, tokenizers, vocabulary, LM batches, downloads."""

from rnnlab.data.batching import batchify, check_size, num_windows, tbptt_windows
from rnnlab.data.download import download
from rnnlab.data.io import NewlineFix, normalise_newlines, read_bytes, read_text, sha256_file
from rnnlab.data.lm_corpus import LMCorpus, load_lm_corpus
from rnnlab.data.registry import (
    CORPORA,
    ENV_VAR,
    CorpusInfo,
    Source,
    corpus_files,
    corpus_path,
    find_corpora,
    get_corpus,
    resolve_data_dir,
    search_dirs,
    verify,
)
from rnnlab.data.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    WordTokenizer,
    make_tokenizer,
    tokenizer_from_json,
)
from rnnlab.data.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab

__all__ = [
    "BOS",
    "CORPORA",
    "ENV_VAR",
    "EOS",
    "PAD",
    "SPECIALS",
    "UNK",
    "CharTokenizer",
    "CorpusInfo",
    "LMCorpus",
    "NewlineFix",
    "SentencePieceTokenizer",
    "Source",
    "Tokenizer",
    "Vocab",
    "WordTokenizer",
    "batchify",
    "check_size",
    "corpus_files",
    "corpus_path",
    "download",
    "find_corpora",
    "get_corpus",
    "load_lm_corpus",
    "make_tokenizer",
    "normalise_newlines",
    "num_windows",
    "read_bytes",
    "read_text",
    "resolve_data_dir",
    "search_dirs",
    "sha256_file",
    "tbptt_windows",
    "tokenizer_from_json",
    "verify",
]
