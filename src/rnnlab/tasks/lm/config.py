"""What a language-model run is: its data (`LMDataConfig`, defined beside the corpus loader that
reads it) and its model (optimisation is in TrainConfig)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.config import field
from rnnlab.data.lm_corpus import LMDataConfig
from rnnlab.nn.factory import CELLS
from rnnlab.tasks.model_names import CELL_MODELS, canonical_model
from rnnlab.tasks.transformer_options import TransformerOptions


@dataclass(frozen=True)
class LMConfig(TransformerOptions, LMDataConfig):
    """A recurrent or Transformer language model and the way its training batches are cut."""

    model: str = field("rnn", "rnn (a recurrent --cell; a cell name such as lstm or gru is "
                       "short for --model rnn --cell NAME) or transformer (a GPT-style causal "
                       "decoder)", choices=("rnn", *CELL_MODELS, "transformer"))
    block_size: int = field(128, "transformer: context length; training reads random windows "
                            "of this many tokens (nanoGPT)", ge=1)
    eval_windows: int = field(0, "transformer: also report nanoGPT's dev estimate, the mean loss "
                              "of this many random batches of windows (0: off)", ge=0)
    cell: str = field("lstm", "recurrent cell", choices=CELLS)
    embedding_size: int = field(0, "embedding size (0: the hidden size)", ge=0)
    hidden: int = field(256, "hidden units per layer", ge=1)
    layers: int = field(2, "stacked recurrent layers", ge=1)
    dropout: float = field(0.2, "dropout between recurrent layers", ge=0.0, lt=1.0)
    dropout_embedding: float = field(0.0, "dropout on the embeddings", ge=0.0, lt=1.0)
    dropout_output: float = field(0.2, "dropout on the top layer's outputs", ge=0.0, lt=1.0)
    tie_weights: bool = field(False, "share the embedding and decoder weights (Press & Wolf)")
    forget_bias: float = field(0.0, "LSTM forget-gate bias at initialisation")
    init_range: float = field(0.0, "initialise every weight U(-r, r) (0: torch's defaults)", ge=0.0)
    impl: str = field("auto", "recurrent implementation", choices=("auto", "fused", "loop"))
    batch_size: int = field(32, "parallel streams in a training batch", ge=1)
    bptt: int = field(64, "truncated BPTT window length", ge=1)
    variable_bptt: bool = field(False, "random window lengths as in AWD-LSTM")
    eval_batch_size: int = field(16, "parallel streams when evaluating", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        canonical_model(self, "lstm")


__all__ = ["LMConfig", "LMDataConfig"]
