"""A trained tagger read back from its run directory: tag sentences, evaluate a split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.tasks.ensemble import load_members, require_same_data
from rnnlab.tasks.registry import last_split, load_run
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.data import Sentence, TagData, convert_tags, load_tag_data
from rnnlab.tasks.tag.encode import TagVocab
from rnnlab.tasks.tag.model import build_model
from rnnlab.tasks.tag.predict import (
    ensemble_tags,
    predict_tags,
    tag_metrics,
    tag_signature,
    timed_scores,
)

SPLITS = ("train", "valid", "test")
OUTPUT_SCHEMES = ("bio", "bioes", "iob1")


# What decides which sentences are in a split: ensemble members must agree on all of it.
DATA_FIELDS = ("corpus", "train", "valid", "test", "file_format", "token_column", "tag_column",
               "field")


class _Tagging:
    """Tagging and evaluation in terms of `predict`, shared by one run and an ensemble."""

    config: TagConfig
    scheme: str  # the tags the model predicts: none, bio, bioes

    def predict(self, sentences: list[Sentence]) -> list[list[str]]:
        raise NotImplementedError

    def tag(self, sentences: list[list[str]], output_scheme: str = "bio") -> list[list[str]]:
        """The tags of each tokenized sentence; entity tags converted to `output_scheme`
        (bio, bioes or iob1; plain labels such as POS tags are left as they are)."""
        if output_scheme not in OUTPUT_SCHEMES:
            raise RnnlabError(f"unknown output scheme {output_scheme!r}; choose one of "
                              f"{', '.join(OUTPUT_SCHEMES)}")
        for number, words in enumerate(sentences, 1):
            if not words:
                raise RnnlabError(f"sentence {number} has no words")
        tags = self.predict([Sentence(w, []) for w in sentences])
        if self.scheme == "none":
            return tags
        return [convert_tags(t, output_scheme) for t in tags]

    def evaluate(self, split: str | None = None, data_dir: str | None = None
                 ) -> dict[str, Any]:
        """Token accuracy (and entity P/R/F1 with the per-type report) on `split` (default:
        the last split the data has: test, else valid)."""
        data = self._data(split, data_dir)
        split = split or last_split(data)
        return self._report(data, split, timed_scores(self.predict, data.split(split),
                                                      self.scheme))

    def _data(self, split: str | None, data_dir: str | None) -> TagData:
        if split is not None and split not in SPLITS:
            raise RnnlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return load_tag_data(self.config, data_dir, self.scheme)

    def _report(self, data: TagData, split: str, scores: dict[str, Any],
                members: int = 1) -> dict[str, Any]:
        return {"split": split, "corpus": data.name, **scores,
                "signature": tag_signature(scores, data.name, split, self.scheme, self.config,
                                           members)}


class TagRun(_Tagging):
    def __init__(self, run_dir: str | Path, device: str = "auto") -> None:
        self.run_dir = Path(run_dir)
        self.saved = load_run(self.run_dir, task="tag")
        self.info: dict[str, Any] = dict(self.saved.record)
        self.config: TagConfig = self.saved.config
        self.scheme: str = self.saved.extra["scheme"]  # the tags the model predicts
        self.vocab = TagVocab.load(self.run_dir, self.config.lowercase,
                                   self.config.zero_digits)
        self.device = resolve_device(device)
        self.model = self.saved.load_model(build_model(self.config, self.vocab, self.scheme),
                                           self.device)

    def predict(self, sentences: list[Sentence]) -> list[list[str]]:
        return predict_tags(self.model, self.vocab, sentences, self.config.eval_batch_size)


class TagEnsemble(_Tagging):
    """Several taggers of the same tags (typically one setting trained with different seeds)
    that choose each sentence's tags together; see `ensemble_tags`."""

    def __init__(self, run_dirs: list[str | Path], device: str = "auto") -> None:
        self.runs = load_members(run_dirs, lambda run_dir: TagRun(run_dir, device))
        first = self.runs[0]
        for run in self.runs[1:]:
            if run.vocab.tags != first.vocab.tags or run.scheme != first.scheme:
                raise RnnlabError(f"{run.run_dir} predicts other tags than {first.run_dir} "
                                  f"({run.scheme}: {run.vocab.tags} vs {first.scheme}: "
                                  f"{first.vocab.tags}): an ensemble needs the same tags")
            if (run.model.crf is None) != (first.model.crf is None):
                raise RnnlabError(f"{run.run_dir} and {first.run_dir} differ in their output "
                                  "layer (CRF and softmax): an ensemble needs one kind")
        self.config, self.scheme = first.config, first.scheme

    def predict(self, sentences: list[Sentence]) -> list[list[str]]:
        return ensemble_tags([(run.model, run.vocab) for run in self.runs], sentences,
                             self.config.eval_batch_size)

    def evaluate(self, split: str | None = None, data_dir: str | None = None
                 ) -> dict[str, Any]:
        """The ensemble's scores on a split, with each member's own beside them."""
        require_same_data([(run.run_dir, run.config) for run in self.runs], DATA_FIELDS,
                          split or "evaluation")
        data = self._data(split, data_dir)  # read once: the members share it
        split = split or last_split(data)
        sentences = data.split(split)
        result = self._report(data, split, timed_scores(self.predict, sentences, self.scheme),
                              members=len(self.runs))
        metric = "accuracy" if self.scheme == "none" else "f1"
        gold = [s.tags for s in sentences]
        result["members"] = [str(run.run_dir) for run in self.runs]
        result[f"member_{metric}"] = [tag_metrics(gold, run.predict(sentences), self.scheme)[metric]
                                      for run in self.runs]
        return result
