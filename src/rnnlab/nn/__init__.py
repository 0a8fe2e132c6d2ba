"""The recurrent building blocks: textbook cells and the layers that unroll them."""

from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.crf import CRF
from rnnlab.nn.init import orthogonal_recurrent_, set_forget_bias_
from rnnlab.nn.recurrent import GRU, LSTM, RNN
from rnnlab.nn.utils import clip_grad_norm, detach_state

__all__ = [
    "CRF", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell", "clip_grad_norm", "detach_state",
    "orthogonal_recurrent_", "set_forget_bias_",
]
