"""Build a recurrent layer from the one-word cell names the CLI and the task configs use."""

from __future__ import annotations

from rnnlab.nn.recurrent import GRU, LSTM, RNN, _Recurrent

CELLS = ("rnn", "rnn-relu", "lstm", "lstm-peephole", "gru", "gru-minimal")


def make_recurrent(
    cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
    dropout: float = 0.0, bidirectional: bool = False, batch_first: bool = False,
    forget_bias: float = 0.0, impl: str = "auto",
) -> _Recurrent:
    """`cell` is one of CELLS: rnn (tanh), rnn-relu, lstm, lstm-peephole, gru, gru-minimal."""
    # dropout acts between layers: one layer has none (and torch's warning would say so)
    common = dict(num_layers=num_layers, dropout=dropout if num_layers > 1 else 0.0,
                  bidirectional=bidirectional,
                  batch_first=batch_first, impl=impl)
    if cell in ("rnn", "rnn-relu"):
        return RNN(input_size, hidden_size, nonlinearity="relu" if cell == "rnn-relu" else "tanh",
                   **common)
    if cell in ("lstm", "lstm-peephole"):
        return LSTM(input_size, hidden_size, peephole=cell == "lstm-peephole",
                    forget_bias=forget_bias, **common)
    if cell in ("gru", "gru-minimal"):
        return GRU(input_size, hidden_size, variant="minimal" if cell == "gru-minimal" else "full",
                   **common)
    raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
