"""The building blocks: textbook recurrent cells and layers, attention and the Transformer."""

from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.crf import CRF
from rnnlab.nn.init import orthogonal_recurrent_, set_forget_bias_
from rnnlab.nn.multihead import (
    MultiheadAttention,
    causal_bias,
    padding_bias,
    scaled_dot_product_attention,
)
from rnnlab.nn.positions import LearnedPositions, SinusoidalPositions, make_positions
from rnnlab.nn.recurrent import GRU, LSTM, RNN
from rnnlab.nn.structured_attention import StructuredSelfAttention, attention_penalty
from rnnlab.nn.transformer import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    cache_length,
    new_cache,
)
from rnnlab.nn.utils import clip_grad_norm, detach_state

__all__ = [
    "CRF", "GRU", "GRUCell", "LSTM", "LSTMCell", "LearnedPositions", "MultiheadAttention", "RNN",
    "RNNCell", "SinusoidalPositions", "StructuredSelfAttention", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer",
    "attention_penalty", "cache_length", "causal_bias", "clip_grad_norm", "detach_state",
    "make_positions", "new_cache", "orthogonal_recurrent_", "padding_bias",
    "scaled_dot_product_attention", "set_forget_bias_",
]
