"""What a classification run is: its data and its model (optimisation is in TrainConfig).

Defaults follow the two models compared on every benchmark: a BiLSTM with additive attention
pooling (embedding 300, 150 units each way, dropout 0.5) and Kim's (2014) CNN (widths 3,4,5 x
100 maps, dropout 0.5), both trained from random embeddings unless `--embeddings` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.config import check_fields, field
from rnnlab.errors import RnnlabError
from rnnlab.nn.factory import CELLS
from rnnlab.tasks.model_names import CELL_MODELS, canonical_model
from rnnlab.tasks.transformer_options import TransformerOptions

POOLINGS = ("last", "mean", "max", "attention", "structured", "first")
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
    min_freq: int = field(2, "words seen fewer times in train become <unk>", ge=1)
    max_vocab: int | None = field(None, "keep at most this many words (plus specials)", ge=1)
    max_len: int = field(100, "truncate texts to this many tokens", ge=1)
    # Documents (--model han): 40 x 50 leaves 97.8% of IMDB reviews whole
    # (benchmarks/results/classify_imdb_40min.md).
    max_sentences: int = field(40, "documents: read at most this many sentences (han)", ge=1)
    max_sentence_len: int = field(50, "documents: cut longer sentences into pieces of this "
                                      "many words (han)", ge=1)
    ngrams: int = field(2, "nbsvm: features are word n-grams up to this length", ge=1)
    folds: int = field(0, "K-fold cross-validation over the corpus (0: a fixed split)", ge=0)
    fold: int = field(-1, "with --folds: train only this fold (0-based; -1: all folds)", ge=-1)
    split_seed: int = field(1, "seed of the fold assignment and of carved dev/test sets", ge=0)
    dev_fraction: float = field(0.1, "share of the training data held out for early stopping "
                                     "when the corpus has no dev set", ge=0.0, lt=1.0)
    test_fraction: float = field(0.1, "share held out for test when the corpus has no test set "
                                      "and no folds are asked for", ge=0.0, lt=1.0)
    embeddings: str | None = field(None, "pretrained word vectors (GloVe/word2vec text file)")
    freeze: bool = field(False, "keep the pretrained embeddings fixed")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.folds == 1:
            raise RnnlabError("--folds must be 0 (a fixed split) or at least 2, got 1")


@dataclass(frozen=True)
class ClassifyConfig(TransformerOptions, ClassifyDataConfig):
    """A recurrent or Transformer classifier (or the TextCNN baseline) over those sentences."""

    model: str = field("rnn", "rnn (recurrent encoder + pooling), transformer (encoder + "
                       "pooling; --hidden is its width), cnn (Kim 2014), han (hierarchical "
                       "attention, documents) or nbsvm (Wang & Manning 2012); a cell name "
                       "such as lstm or gru is short for --model rnn --cell NAME",
                       choices=("rnn", *CELL_MODELS, "transformer", "cnn", "han", "nbsvm"))
    cell: str = field("lstm", "recurrent cell", choices=CELLS)
    embedding_size: int = field(300, "word embedding size", ge=1)
    embedding_init: float = field(0.25, "initialise embeddings U(-a, a) (Kim 2014's random "
                                        "vectors: 0.25); 0: torch's N(0, 1)", ge=0.0)
    hidden: int = field(150, "hidden units per direction", ge=1)
    layers: int = field(1, "stacked recurrent layers", ge=1)
    bidirectional: bool = field(True, "read each sentence in both directions")
    dropout: float = field(0.5, "dropout on embeddings, between layers and before the head",
                           ge=0.0, lt=1.0)
    word_dropout: float = field(0.0, "training: drop whole words (zero vectors) with this "
                                     "probability", ge=0.0, lt=1.0)
    pooling: str = field("attention", "how the states become one vector: the last state, "
                         "mean, max, attention (one learned query), structured (Lin et al. "
                         "2017: --hops queries) or first (transformer: a learned summary token "
                         "read first, as BERT's [CLS])", choices=POOLINGS)
    hops: int = field(4, "structured pooling: attention hops r", ge=1)
    penalty: float = field(1.0, "structured pooling: weight of the penalty ‖AAᵀ − I‖²_F",
                           ge=0.0)
    attention_size: int = field(0, "hidden size of the attention scorer (0: the state size)", ge=0)
    mlp_hidden: int = field(0, "hidden units of the MLP head (0: a single linear layer)", ge=0)
    filter_widths: str = field("3,4,5", "TextCNN filter widths, comma-separated")
    filter_maps: int = field(100, "TextCNN feature maps per width", ge=1)
    impl: str = field("auto", "recurrent implementation", choices=("auto", "fused", "loop"))
    batch_size: int = field(50, "sentences per training batch", ge=1)
    eval_batch_size: int = field(200, "sentences per evaluation batch", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        canonical_model(self, "lstm")
        if self.pooling == "first" and self.model != "transformer":
            raise RnnlabError("--pooling first reads a summary token only a transformer has; "
                              "a recurrent encoder's summary is --pooling last")

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(w) for w in self.filter_widths.split(",") if w.strip())
