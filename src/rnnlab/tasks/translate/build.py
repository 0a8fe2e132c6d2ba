"""The translation model a config asks for: recurrent, convolutional or Transformer."""

from __future__ import annotations

from torch import nn

from rnnlab.tasks.translate.config import TranslateConfig


def build_model(src_vocab_size: int, tgt_vocab_size: int, config: TranslateConfig,
                pad_id: int = 0) -> nn.Module:
    """An untrained model with `encode`, `step`, `loss` and `translate` (see Translator)."""
    if config.model == "conv":
        from rnnlab.tasks.translate.conv_model import ConvSeq2Seq

        return ConvSeq2Seq(src_vocab_size, tgt_vocab_size, config, pad_id=pad_id)
    if config.model == "transformer":
        from rnnlab.tasks.translate.transformer_model import TransformerSeq2Seq

        return TransformerSeq2Seq(src_vocab_size, tgt_vocab_size, config, pad_id=pad_id)
    from rnnlab.tasks.translate.model import Seq2Seq

    return Seq2Seq(src_vocab_size, tgt_vocab_size, config, pad_id=pad_id)
