"""The Transformer's own settings, shared by every task that offers `--model transformer`.

The width is the task's `--hidden` (d_model), the depth its `--layers` and the dropout its
`--dropout`, so a recurrent and a Transformer run of one task are configured alike; only what a
recurrent model lacks is here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from rnnlab.config import field
from rnnlab.nn.positions import POSITIONS
from rnnlab.nn.transformer import ACTIVATIONS, TransformerEncoder


@dataclass(frozen=True)
class TransformerOptions:
    heads: int = field(4, "transformer: attention heads (they split --hidden)", ge=1)
    ff: int = field(0, "transformer: feed-forward width (0: 4 x --hidden, as GPT and the paper)",
                    ge=0)
    positions: str = field("learned", "transformer: position embeddings", choices=POSITIONS)
    norm_first: bool = field(True, "transformer: pre-LN (GPT-2; trains without care) instead of "
                             "the paper's post-LN")
    activation: str = field("gelu", "transformer: feed-forward nonlinearity",
                            choices=tuple(ACTIVATIONS))
    bias: bool = field(True, "transformer: biases in linear layers and LayerNorms (nanoGPT: off)")


def make_transformer_encoder(options: TransformerOptions, width: int, layers: int,
                             dropout: float) -> TransformerEncoder:
    """The encoder stack a task's config describes (`width` = d_model)."""
    from rnnlab.errors import RnnlabError

    if width % options.heads:
        raise RnnlabError(f"--hidden ({width}) must be divisible by --heads ({options.heads})")
    return TransformerEncoder(layers, width, options.heads, options.ff or 4 * width, dropout,
                              options.activation, options.norm_first, options.bias)


def gpt_init_(model: nn.Module, layers: int) -> None:
    """GPT-2's initialisation (as nanoGPT): N(0, 0.02) for every matrix and embedding, zero
    biases, and N(0, 0.02 / √(2L)) for the projections that write into the residual stream
    (attention's W^O and the FFN's W_2), so the stream's variance does not grow with depth."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        if hasattr(module, "in_proj_weight"):
            nn.init.normal_(module.in_proj_weight, std=0.02)
    for name, parameter in model.named_parameters():
        if name.endswith(("out_proj.weight", "linear2.weight")):
            nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * layers))
