"""Text classification (many-to-one): a sentence in, one label out.

`config` says what a run is, `data` reads SST / MR / a user's table into labelled token
lists, `model` holds the recurrent `Classifier` and the `TextCNN` baseline, `train` runs the
Trainer (one split or K-fold cross-validation), `run` reads a trained run back for
prediction and evaluation, and `explain` renders attention weights.
"""

from rnnlab.tasks.classify.config import ClassifyConfig, ClassifyDataConfig

__all__ = ["ClassifyConfig", "ClassifyDataConfig"]
