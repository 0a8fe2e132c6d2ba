"""What a translation run is: parallel data, the encoder-decoder, and how it decodes."""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.config import check_fields, field
from rnnlab.errors import RnnlabError
from rnnlab.nn.factory import CELLS
from rnnlab.nn.positions import POSITIONS
from rnnlab.nn.transformer import ACTIVATIONS
from rnnlab.tasks.model_names import CELL_MODELS, canonical_model
from rnnlab.tasks.transformer_options import TransformerOptions

ATTENTIONS = ("none", "bahdanau", "dot", "general", "concat")
MODELS = ("rnn", *CELL_MODELS, "conv", "transformer")


@dataclass(frozen=True)
class TranslateConfig(TransformerOptions):
    """An encoder-decoder translation model, its data and its decoding defaults."""

    # -- data
    corpus: str | None = field("multi30k", "named parallel corpus (files <split>.<lang>)")
    src_train: str | None = field(None, "your own source-side training file (one sentence a line)")
    tgt_train: str | None = field(None, "your own target-side training file, line-aligned")
    src_valid: str | None = field(None, "your own source-side validation file")
    tgt_valid: str | None = field(None, "your own target-side validation file")
    src_test: str | None = field(None, "your own source-side test file")
    tgt_test: str | None = field(None, "your own target-side test file")
    src_lang: str = field("de", "source language (the corpus file suffix)")
    tgt_lang: str = field("en", "target language (the corpus file suffix)")
    subwords: int = field(0, "0: lower-cased words; N: sentencepiece with N pieces per side", ge=0)
    min_freq: int = field(2, "word vocabulary: drop words seen fewer times in train (-> <unk>)",
                          ge=1)
    max_len: int = field(50, "drop training pairs with a side longer than this many tokens", ge=1)
    # -- model
    model: str = field("rnn", "rnn: recurrent encoder-decoder (--cell, --attention; a cell "
                       "name such as gru or lstm is short for --model rnn --cell NAME); conv: "
                       "ConvS2S (Gehring et al. 2017); transformer: Vaswani et al. 2017",
                       choices=MODELS)
    cell: str = field("gru", "recurrent cell of encoder and decoder", choices=CELLS)
    embedding: int = field(256, "embedding size (source and target); not the transformer's "
                           "(its embeddings are --hidden wide)", ge=1)
    hidden: int = field(512, "hidden units per layer (each direction of the encoder); conv: "
                        "channels of every convolution; transformer: the width d_model", ge=1)
    layers: int = field(1, "stacked layers in the encoder and in the decoder", ge=1)
    kernel: int = field(3, "conv: kernel width of every convolution (odd)", ge=1)
    # the Transformer's own options are TransformerOptions' (heads, ff, bias); these three
    # take the paper's defaults for translation rather than GPT's
    positions: str = field("sinusoidal", "transformer: position embeddings (the paper's "
                           "sinusoids, or learned up to --max-positions)", choices=POSITIONS)
    norm_first: bool = field(False, "transformer: pre-LN (layer norm before each sublayer) "
                             "instead of the paper's post-LN")
    activation: str = field("relu", "transformer: feed-forward nonlinearity",
                            choices=tuple(ACTIVATIONS))
    max_positions: int = field(512, "conv, transformer with learned positions: positions with "
                               "an embedding (the longest sentence)", ge=1)
    bidirectional: bool = field(True, "bidirectional encoder")
    dropout: float = field(0.3, "dropout on embeddings, between layers and before the output",
                           ge=0.0, lt=1.0)
    reverse_source: bool = field(False, "read the source backwards (Sutskever et al. 2014)")
    attention: str = field("bahdanau", "none: plain encoder-decoder; bahdanau: additive; "
                           "dot/general/concat: Luong's scores", choices=ATTENTIONS)
    local: bool = field(False, "Luong's local-p attention instead of global")
    local_window: int = field(10, "local-p window half-width D (Gaussian sigma = D/2)", ge=1)
    input_feeding: bool = field(False, "feed the attentional vector to the next step (Luong)")
    tie_embeddings: bool = field(False, "share the target embedding and the output layer")
    bridge: bool = field(True, "initial decoder state = tanh(W [final encoder states]); "
                         "else zeros")
    # -- training
    teacher_forcing: float = field(1.0, "probability of feeding the gold previous token",
                                   ge=0.0, le=1.0)
    label_smoothing: float = field(0.0, "label smoothing of the training loss", ge=0.0, lt=1.0)
    batch_size: int = field(64, "sentence pairs per training batch", ge=1)
    dev_metric: str = field("bleu", "early-stopping metric: bleu (greedy) or ppl",
                            choices=("bleu", "ppl"))
    dev_sentences: int = field(0, "decode only the first N dev sentences for dev BLEU (0: all)",
                               ge=0)
    # -- decoding defaults
    beam: int = field(5, "beam size (1: greedy)", ge=1)
    alpha: float = field(0.6, "GNMT length-penalty exponent (0: no length normalisation)", ge=0.0)
    max_len_ratio: float = field(2.0, "outputs stop at ratio * source length + 10 tokens", gt=0.0)
    max_len_extra: int = field(10, "the constant added to the ratio's length limit", ge=0)

    def __post_init__(self) -> None:
        check_fields(self)
        canonical_model(self, "gru")
        if self.model == "conv" and self.kernel % 2 == 0:
            raise RnnlabError(f"--kernel must be odd (the encoder's convolutions are centred), "
                              f"got {self.kernel}")
        if self.model == "transformer" and self.hidden % self.heads:
            raise RnnlabError(f"--hidden ({self.hidden}) must be divisible by --heads "
                              f"({self.heads})")
        if self.attention == "none" and (self.local or self.input_feeding):
            raise RnnlabError("--local and --input-feeding need an attention (not none)")
        if self.attention == "bahdanau" and self.input_feeding:
            raise RnnlabError("--input-feeding is Luong's; Bahdanau's decoder reads its context "
                              "at every step already")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise RnnlabError(f"teacher_forcing must be in [0, 1], got {self.teacher_forcing}")
