"""Documents for classification: IMDB's reviews as examples, and the model-specific ids.

A document is an `Example` whose `sentences` holds the length of each sentence, so the flat
models read its first `max_len` tokens and the hierarchical one cuts the same tokens back into
sentences. What each model reads:

- rnn / cnn: the first `max_len` word ids of the document (as for a sentence);
- han: up to `max_sentences` sentences (or pieces of long ones) of up to `max_sentence_len`
  word ids each;
- nbsvm: the ids of the distinct word n-grams (n <= `ngrams`) of the whole document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.data.aclimdb import movie_split, read_aclimdb
from rnnlab.data.registry import corpus_path, search_dirs
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.tasks.classify.data import ClassifyData, Example, tokenize_document

IMDB_LABELS = {"neg": "negative", "pos": "positive"}
NGRAM_JOIN = " "  # "not good" is the bigram of "not" and "good"


def imdb_source(data_dir: str | None = None) -> Path:
    """The registered IMDB files (either archive), else an unpacked `aclimdb/aclImdb/`."""
    try:
        return corpus_path("aclimdb", data_dir)
    except RnnlabError:
        for base, _ in search_dirs(data_dir):
            if (base / "aclimdb" / "aclImdb" / "train").is_dir():
                return base / "aclimdb" / "aclImdb"
        raise


def _examples(reviews: list, lowercase: bool) -> list[Example]:
    examples = []
    for review in reviews:
        tokens, sentences = tokenize_document(review.text, lowercase)
        if not tokens:
            raise RnnlabError(f"{review.where}: empty review")
        examples.append(Example(tokens, IMDB_LABELS[review.label], review.where, sentences))
    return examples


def read_imdb(config: Any, data_dir: str | None = None) -> tuple[list[Example], list[Example],
                                                                  Any, list[str]]:
    """(train, dev, read_test, notes): the training reviews minus a seeded `dev_fraction` of
    their movies, which form the dev set; `read_test()` reads the test reviews when asked."""
    source = imdb_source(data_dir)
    reviews = read_aclimdb(source, splits=("train",))["train"]
    train, dev = movie_split(reviews, config.dev_fraction, config.split_seed)
    movies = len({r.movie for r in dev})
    notes = [f"dev = all reviews of a seeded {config.dev_fraction:.0%} of the training movies "
             f"({movies} movies, split seed {config.split_seed}); source {source}"]

    def read_test() -> list[Example]:
        return read_imdb_test(config, data_dir)

    return _examples(train, config.lowercase), _examples(dev, config.lowercase), read_test, notes


def read_imdb_test(config: Any, data_dir: str | None = None) -> list[Example]:
    """The 25,000 test reviews as examples (for `eval --split test` and benchmarks)."""
    return _examples(read_aclimdb(imdb_source(data_dir), splits=("test",))["test"],
                     config.lowercase)


def sentences_of(example: Example) -> list[list[str]]:
    """The example's tokens cut into its sentences (one sentence if it has no breaks)."""
    if not example.sentences:
        return [example.tokens]
    out, start = [], 0
    for length in example.sentences:
        out.append(example.tokens[start:start + length])
        start += length
    return out


def pieces(example: Example, config: Any) -> list[list[str]]:
    """What the hierarchical model reads: the sentences, a sentence longer than
    `max_sentence_len` cut into consecutive pieces of at most that many words (so a run-on
    review without punctuation loses nothing), and at most `max_sentences` of them."""
    width = config.max_sentence_len
    cut = [words[i:i + width] for words in sentences_of(example)
           for i in range(0, len(words), width)]
    return cut[: config.max_sentences]


def ngrams(tokens: list[str], n: int) -> list[str]:
    """The distinct word n-grams of lengths 1..n, in order of first appearance."""
    grams = (NGRAM_JOIN.join(tokens[i:i + k]) for k in range(1, n + 1)
             for i in range(len(tokens) - k + 1))
    return list(dict.fromkeys(grams))


def vocabulary_terms(pool: list[Example], config: Any):
    """What the vocabulary counts: words, or NBSVM's n-grams (once per document, so
    `min_freq` is a document frequency there)."""
    if getattr(config, "model", None) == "nbsvm":
        return (g for ex in pool for g in ngrams(ex.tokens, config.ngrams))
    return (t for ex in pool for t in ex.tokens)


def encode_example(vocab: Vocab, example: Example, config: Any) -> list:
    """The ids one model reads (see the module docstring)."""
    if config.model == "han":
        return [vocab.encode(words) for words in pieces(example, config)]
    if config.model == "nbsvm":
        ids = [i for i in vocab.encode(ngrams(example.tokens, config.ngrams)) if i != vocab.unk_id]
        return ids or [vocab.unk_id]  # a document of unseen n-grams still gets one position
    return vocab.encode(example.tokens[: config.max_len])


def encode_examples(data: ClassifyData, examples: list[Example], config: Any
                    ) -> tuple[list[list], list[int]]:
    """Ids (per `encode_example`) and label ids; an unknown label names its line."""
    index = {label: i for i, label in enumerate(data.labels)}
    ids, labels = [], []
    for ex in examples:
        if ex.label not in index:
            raise RnnlabError(f"{ex.where}: label {ex.label!r} is not one of the training "
                              f"labels ({', '.join(data.labels)})")
        ids.append(encode_example(data.vocab, ex, config))
        labels.append(index[ex.label])
    return ids, labels


def text_example(text: str, config: Any) -> Example:
    """A raw text to classify, read as the run's training texts were (label unknown)."""
    from rnnlab.tasks.classify.data import reads_documents, tokenize

    if reads_documents(config):
        tokens, sentences = tokenize_document(text, config.lowercase)
        return Example(tokens, "", "text", sentences)
    return Example(tokenize(text, config.lowercase), "", "text")


def tokens_read(example: Example, config: Any) -> list:
    """The words the model reads: a document's sentences for han, else a flat list."""
    if config.model == "han":
        return pieces(example, config)
    return example.tokens if config.model == "nbsvm" else example.tokens[: config.max_len]


def coverage(examples: list[Example], max_sentences: int, max_sentence_len: int) -> float:
    """The share of documents that the limits leave whole: at most `max_sentences` pieces
    once sentences longer than `max_sentence_len` are cut (see `pieces`)."""
    whole = sum(sum(-(-n // max_sentence_len) for n in ex.sentences) <= max_sentences
                for ex in examples)
    return whole / max(len(examples), 1)
