"""Translation (sequence to sequence): encoder-decoder RNNs with attention, beam search, BLEU."""

from rnnlab.tasks.translate.config import TranslateConfig

__all__ = ["TranslateConfig"]
