"""rnnlab: recurrent neural networks for NLP, as the textbooks write them and as fast as torch."""

__version__ = "0.1.0"
