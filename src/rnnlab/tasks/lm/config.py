"""What a language-model run is: its data and its model (optimisation is in TrainConfig)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.config import field
from rnnlab.nn.factory import CELLS
from rnnlab.tasks.transformer_options import TransformerOptions


@dataclass(frozen=True)
class LMDataConfig:
    """Which text, and how it becomes tokens: shared by the neural and the n-gram models."""

    corpus: str | None = field("tinyshakespeare", "named corpus (see `rnnlab info`)")
    train: str | None = field(None, "your own training text file (instead of --corpus)")
    valid: str | None = field(None, "your own validation text file")
    test: str | None = field(None, "your own test text file")
    level: str | None = field(None, "char, word or subword (default: the corpus's own level)",
                              choices=("char", "word", "subword"))
    min_freq: int = field(1, "drop tokens seen fewer times in train (they become <unk>)")
    max_vocab: int | None = field(None, "keep at most this many tokens (plus specials)")
    subword_vocab: int = field(8000, "sentencepiece vocabulary size for --level subword")


@dataclass(frozen=True)
class LMConfig(TransformerOptions, LMDataConfig):
    """A recurrent or Transformer language model and the way its training batches are cut."""

    model: str = field("rnn", "rnn (a recurrent --cell) or transformer (a GPT-style causal "
                       "decoder)", choices=("rnn", "transformer"))
    block_size: int = field(128, "transformer: context length; training reads random windows "
                            "of this many tokens (nanoGPT)")
    eval_windows: int = field(0, "transformer: also report nanoGPT's dev estimate, the mean loss "
                              "of this many random batches of windows (0: off)")
    cell: str = field("lstm", "recurrent cell", choices=CELLS)
    embedding_size: int = field(0, "embedding size (0: the hidden size)")
    hidden: int = field(256, "hidden units per layer")
    layers: int = field(2, "stacked recurrent layers")
    dropout: float = field(0.2, "dropout between recurrent layers")
    dropout_embedding: float = field(0.0, "dropout on the embeddings")
    dropout_output: float = field(0.2, "dropout on the top layer's outputs")
    tie_weights: bool = field(False, "share the embedding and decoder weights (Press & Wolf)")
    forget_bias: float = field(0.0, "LSTM forget-gate bias at initialisation")
    init_range: float = field(0.0, "initialise every weight U(-r, r) (0: torch's defaults)")
    impl: str = field("auto", "recurrent implementation", choices=("auto", "fused", "loop"))
    batch_size: int = field(32, "parallel streams in a training batch")
    bptt: int = field(64, "truncated BPTT window length")
    variable_bptt: bool = field(False, "random window lengths as in AWD-LSTM")
    eval_batch_size: int = field(16, "parallel streams when evaluating")
