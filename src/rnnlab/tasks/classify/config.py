"""What a classification run is: its data and its model (optimisation is in TrainConfig).

Defaults follow the two models compared on every benchmark: a BiLSTM with additive attention
pooling (embedding 300, 150 units each way, dropout 0.5) and Kim's (2014) CNN (widths 3,4,5 x
100 maps, dropout 0.5), both trained from random embeddings unless `--embeddings` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.config import field
from rnnlab.errors import RnnlabError
from rnnlab.nn.factory import CELLS

POOLINGS = ("last", "mean", "max", "attention")
FORMATS = ("tsv", "csv", "jsonl")


@dataclass(frozen=True)
class ClassifyDataConfig:
    """Which labelled sentences, how they become tokens, and how they are split."""

    corpus: str | None = field("sst2", "named corpus: sst2, sst5, mr or aclimdb (documents)")
    train: str | None = field(None, "your own training file (TSV/CSV/JSONL; instead of --corpus)")
    valid: str | None = field(None, "your own dev file (default: --dev-fraction of train)")
    test: str | None = field(None, "your own test file")
    file_format: str | None = field(None, "file format (default: from the extension)",
                                    choices=FORMATS)
    label_column: str = field("label", "column (or JSON key) holding the label")
    text_column: str = field("text", "column (or JSON key) holding the text")
    lowercase: bool = field(True, "lower-case the text before tokenizing")
    # 2, so that <unk> is trained on the rare words and means "unseen word" at test time
    # (SST-2: 82.3 against 79.3 with 1 and N(0, 1) embeddings; benchmarks/results).
    min_freq: int = field(2, "words seen fewer times in train become <unk>")
    max_vocab: int | None = field(None, "keep at most this many words (plus specials)")
    max_len: int = field(100, "truncate texts to this many tokens")
    # Documents (--model han): 40 x 50 leaves 97.8% of IMDB reviews whole
    # (benchmarks/results/classify_imdb_40min.md).
    max_sentences: int = field(40, "documents: read at most this many sentences (han)")
    max_sentence_len: int = field(50, "documents: cut longer sentences into pieces of this "
                                      "many words (han)")
    ngrams: int = field(2, "nbsvm: features are word n-grams up to this length")
    folds: int = field(0, "K-fold cross-validation over the corpus (0: a fixed split)")
    fold: int = field(-1, "with --folds: train only this fold (0-based; -1: all folds)")
    split_seed: int = field(1, "seed of the fold assignment and of carved dev/test sets")
    dev_fraction: float = field(0.1, "share of the training data held out for early stopping "
                                     "when the corpus has no dev set")
    test_fraction: float = field(0.1, "share held out for test when the corpus has no test set "
                                      "and no folds are asked for")
    embeddings: str | None = field(None, "pretrained word vectors (GloVe/word2vec text file)")
    freeze: bool = field(False, "keep the pretrained embeddings fixed")


@dataclass(frozen=True)
class ClassifyConfig(ClassifyDataConfig):
    """A recurrent classifier (or the TextCNN baseline) over those sentences."""

    model: str = field("rnn", "rnn (recurrent encoder + pooling), cnn (Kim 2014), han "
                              "(hierarchical attention, documents) or nbsvm (Wang & Manning 2012)",
                       choices=("rnn", "cnn", "han", "nbsvm"))
    cell: str = field("lstm", "recurrent cell", choices=CELLS)
    embedding_size: int = field(300, "word embedding size")
    embedding_init: float = field(0.25, "initialise embeddings U(-a, a) (Kim 2014's random "
                                        "vectors: 0.25); 0: torch's N(0, 1)")
    hidden: int = field(150, "hidden units per direction")
    layers: int = field(1, "stacked recurrent layers")
    bidirectional: bool = field(True, "read each sentence in both directions")
    dropout: float = field(0.5, "dropout on embeddings, between layers and before the head")
    word_dropout: float = field(0.0, "training: drop whole words (zero vectors) with this "
                                     "probability")
    pooling: str = field("attention", "how the states become one vector", choices=POOLINGS)
    attention_size: int = field(0, "hidden size of the attention scorer (0: the state size)")
    mlp_hidden: int = field(0, "hidden units of the MLP head (0: a single linear layer)")
    filter_widths: str = field("3,4,5", "TextCNN filter widths, comma-separated")
    filter_maps: int = field(100, "TextCNN feature maps per width")
    impl: str = field("auto", "recurrent implementation", choices=("auto", "fused", "loop"))
    batch_size: int = field(50, "sentences per training batch")
    eval_batch_size: int = field(200, "sentences per evaluation batch")

    def __post_init__(self) -> None:
        if not 0.0 <= self.word_dropout < 1.0:
            raise RnnlabError(f"word_dropout must be in [0, 1), got {self.word_dropout}")

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(w) for w in self.filter_widths.split(",") if w.strip())
