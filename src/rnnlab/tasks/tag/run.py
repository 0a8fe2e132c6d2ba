"""A trained tagger read back from its run directory: tag sentences, evaluate a split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.data import Sentence, convert_tags, load_tag_data
from rnnlab.tasks.tag.encode import TagVocab
from rnnlab.tasks.tag.predict import predict_tags
from rnnlab.tasks.tag.train import build_model, evaluate_sentences, tag_signature
from rnnlab.training.checkpoint import CONFIG_FILE, MODEL_FILE, load_weights, read_json

SPLITS = ("train", "valid", "test")
OUTPUT_SCHEMES = ("bio", "bioes", "iob1")


class TagRun:
    def __init__(self, run_dir: str | Path, device: str = "auto") -> None:
        self.run_dir = Path(run_dir)
        if not (self.run_dir / CONFIG_FILE).is_file():
            raise RnnlabError(f"{self.run_dir} is not a run directory (no {CONFIG_FILE})")
        self.info: dict[str, Any] = read_json(self.run_dir / CONFIG_FILE)
        if self.info.get("task") != "tag":
            raise RnnlabError(f"{self.run_dir} holds a {self.info.get('task')!r} run, "
                              "not a tagger")
        self.config = TagConfig(**self.info["config"])
        self.scheme: str = self.info["scheme"]  # the tags the model predicts: none, bio, bioes
        self.vocab = TagVocab.load(self.run_dir, self.config.lowercase,
                                   self.config.zero_digits)
        self.device = resolve_device(device)
        self.model = build_model(self.config, self.vocab, self.scheme).to(self.device)
        load_weights(self.model, self.run_dir / MODEL_FILE)
        self.model.eval()

    def tag(self, sentences: list[list[str]], output_scheme: str = "bio") -> list[list[str]]:
        """The tags of each tokenized sentence; entity tags converted to `output_scheme`
        (bio, bioes or iob1; plain labels such as POS tags are left as they are)."""
        if output_scheme not in OUTPUT_SCHEMES:
            raise RnnlabError(f"unknown output scheme {output_scheme!r}; choose one of "
                              f"{', '.join(OUTPUT_SCHEMES)}")
        for number, words in enumerate(sentences, 1):
            if not words:
                raise RnnlabError(f"sentence {number} has no words")
        tags = predict_tags(self.model, self.vocab, [Sentence(w, []) for w in sentences],
                            self.config.eval_batch_size)
        if self.scheme == "none":
            return tags
        return [convert_tags(t, output_scheme) for t in tags]

    def evaluate(self, split: str = "test", data_dir: str | None = None) -> dict[str, Any]:
        """Token accuracy (and entity P/R/F1 with seqeval's per-type report) on a split."""
        if split not in SPLITS:
            raise RnnlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        data = load_tag_data(self.config, data_dir, self.scheme)
        scores = evaluate_sentences(self.model, self.vocab, data.split(split), self.scheme,
                                    self.config.eval_batch_size)
        return {"split": split, "corpus": data.name, **scores,
                "signature": tag_signature(scores, data.name, split, self.scheme, self.config)}
