"""NumPy forward and hand-written backpropagation through time: the oracle and the teaching copy.

Each model is a pair `*_forward(x, h0, params) -> (hs, cache)` and `*_backward(dhs, cache) ->
grads`, single layer, batched, time-major (x is (T, B, I)), with torch's parameter names and
gate order, in the symbols of `rnnlab.nn.cells`. `rnnlab.nn` never imports this package: only
the tests connect the two, so the reference stays an independent check of the fast path.
"""

from rnnlab.reference.common import init_params, sigmoid
from rnnlab.reference.gradcheck import numerical_gradient, relative_error
from rnnlab.reference.gru import gru_backward, gru_forward
from rnnlab.reference.lstm import lstm_backward, lstm_forward
from rnnlab.reference.rnn import rnn_backward, rnn_forward

__all__ = [
    "gru_backward",
    "gru_forward",
    "init_params",
    "lstm_backward",
    "lstm_forward",
    "numerical_gradient",
    "relative_error",
    "rnn_backward",
    "rnn_forward",
    "sigmoid",
]
