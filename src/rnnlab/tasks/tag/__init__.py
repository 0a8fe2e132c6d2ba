"""Sequence labelling: BiLSTM(-CRF) taggers with character features (POS, NER, chunking)."""

from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.model import Tagger

__all__ = ["TagConfig", "Tagger"]
