"""What a tagging run is: its data and its model (optimisation is in TrainConfig).

Defaults follow Lample et al. (2016) and Plank et al. (2016): 100-dim word embeddings, a char
BiLSTM of 25 units each way over 25-dim char embeddings, a word BiLSTM of 100 units each way,
dropout 0.5, batches of 16 sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.config import check_fields, field
from rnnlab.nn.factory import CELLS
from rnnlab.tasks.model_names import CELL_MODELS, canonical_model
from rnnlab.tasks.transformer_options import TransformerOptions

SCHEMES = ("auto", "none", "bio", "bioes")
CHAR_FEATURES = ("none", "lstm", "cnn")


@dataclass(frozen=True)
class TagConfig(TransformerOptions):
    corpus: str | None = field("ud-english-ewt", "named corpus: ud-english-ewt or conll2003")
    train: str | None = field(None, "your own training file (instead of --corpus)")
    valid: str | None = field(None, "your own validation file")
    test: str | None = field(None, "your own test file")
    file_format: str = field("conll", "format of your own files: conllu (UD) or conll (columns)",
                             choices=("conllu", "conll"))
    token_column: int = field(0, "column of the word in conll files (0-based; -1: last)")
    tag_column: int = field(-1, "column of the tag in conll files (0-based; -1: last)")
    scheme: str = field("auto", "entity tag scheme to train with (IOB1/IOB2/BIOES input is "
                        "converted); none: plain labels such as POS; auto: bio for entity-like "
                        "tags, else none", choices=SCHEMES)
    constrained: bool = field(True, "CRF: forbid transitions the scheme makes invalid")
    lowercase: bool = field(False, "look words up lower-cased (chars keep their case)")
    zero_digits: bool = field(False, "look words up with every digit replaced by 0 (chars keep "
                              "theirs)")
    min_freq: int = field(1, "words seen fewer times in train become <unk>", ge=1)
    unk_replace: float = field(0.5, "training: replace a singleton word by <unk> with this "
                               "probability (teaches the <unk> vector)", ge=0.0, le=1.0)
    embeddings: str | None = field(None, "pretrained word vectors file (GloVe / word2vec text)")
    freeze_embeddings: bool = field(False, "keep the pretrained vectors fixed")
    word_embedding_size: int = field(100, "word embedding size", ge=1)
    char_features: str = field("lstm", "character features of each word", choices=CHAR_FEATURES)
    char_embedding_size: int = field(25, "character embedding size", ge=1)
    char_hidden: int = field(25, "char BiLSTM units per direction, or CNN filters", ge=1)
    char_kernel: int = field(3, "char CNN filter width", ge=1)
    model: str = field("rnn", "rnn (a bidirectional recurrent word encoder of --cell) or "
                       "transformer (an encoder of width --hidden over the same word + char "
                       "features); a cell name such as lstm or gru is short for --model rnn "
                       "--cell NAME", choices=("rnn", *CELL_MODELS, "transformer"))
    cell: str = field("lstm", "recurrent cell of the word encoder", choices=CELLS)
    hidden: int = field(100, "word BiLSTM units per direction, or the transformer's width", ge=1)
    layers: int = field(1, "stacked word BiLSTM layers", ge=1)
    dropout: float = field(0.5, "dropout on the word representation and the BiLSTM output",
                           ge=0.0, lt=1.0)
    crf: bool = field(False, "a linear-chain CRF output layer instead of per-token softmax")
    batch_size: int = field(16, "sentences per training batch", ge=1)
    eval_batch_size: int = field(128, "sentences per batch when evaluating or tagging", ge=1)
    # last: once defined, the name `field` in this class body is this attribute, not the helper
    field: str = field("upos", "CoNLL-U tag field (UD corpora)", choices=("upos", "xpos"))

    def __post_init__(self) -> None:
        check_fields(self)
        canonical_model(self, "lstm")
