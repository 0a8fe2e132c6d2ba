"""Training a tagger: bucketed sentence batches, early stopping on dev accuracy or entity F1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnlab.data.buckets import bucket_batches
from rnnlab.tasks.fit import fit_and_plot
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.data import TagData, load_tag_data
from rnnlab.tasks.tag.encode import TagVocab, collate
from rnnlab.tasks.tag.model import Tagger, build_model
from rnnlab.tasks.tag.predict import (  # noqa: F401 - re-exported
    evaluate_sentences,
    predict_tags,
    tag_metrics,
    tag_signature,
    timed_scores,
)
from rnnlab.training import distributed
from rnnlab.training.checkpoint import MODEL_FILE, load_weights
from rnnlab.training.config import TrainConfig
from rnnlab.training.run_dir import open_run, read_run_info, write_run_info


class TagTask:
    """The Trainer's view of tagging (see training.trainer.TrainTask)."""

    higher_is_better = True

    def __init__(self, model: Tagger, vocab: TagVocab, data: TagData, config: TagConfig,
                 seed: int) -> None:
        self.model, self.vocab, self.data, self.config, self.seed = model, vocab, data, config, seed
        self.metric = "accuracy" if data.scheme == "none" else "f1"
        self.encoded = [vocab.encode(s, "train") for s in data.train]
        self.lengths = [len(e.words) for e in self.encoded]
        self.singletons = torch.tensor(sorted(vocab.singletons(data.train)), dtype=torch.long)
        self.device = next(model.parameters()).device

    def batches(self, epoch: int) -> list[list[int]]:
        """Length-bucketed batches of (seed, epoch); data parallel, this process's share."""
        return distributed.share_batches(
            bucket_batches(self.lengths, self.config.batch_size, seed=self.seed, epoch=epoch))

    def start_epoch(self, epoch: int) -> None:
        """Nothing carries over between epochs."""

    def train_loss(self, indices: list[int]) -> tuple[Tensor, int]:
        batch = collate([self.encoded[i] for i in indices])
        if self.config.unk_replace and len(self.singletons):
            # a word seen once in training stands in for the unseen words of test time
            chosen = torch.isin(batch.words, self.singletons)
            chosen &= torch.rand(batch.words.shape) < self.config.unk_replace
            batch.words = batch.words.masked_fill(chosen, self.vocab.words.unk_id)
        batch = batch.to(self.device)
        return self.model.loss(batch), int(batch.lengths.sum())

    def evaluate(self) -> dict[str, float]:
        predicted = predict_tags(self.model, self.vocab, self.data.valid,
                                 self.config.eval_batch_size)
        scores = tag_metrics([s.tags for s in self.data.valid], predicted, self.data.scheme)
        return {k: v for k, v in scores.items() if k != "report"}

    def state_dict(self) -> dict[str, Any]:
        return {}  # the batches are a function of (seed, epoch); the RNG is the Trainer's

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see state_dict)."""


def train_tag(config: TagConfig, train_config: TrainConfig, run_dir: Path, *,
              data_dir: str | None = None, resume: bool = False,
              show_progress: bool = True) -> dict[str, Any]:
    """Train a tagger into `run_dir` and report dev and test metrics of its best weights."""
    run_dir = Path(run_dir)
    config, device = open_run(run_dir, "tag", config, train_config, resume)
    scheme = read_run_info(run_dir, {"config": TagConfig}).extra["scheme"] if resume else None
    data = load_tag_data(config, data_dir, scheme)
    notes = list(data.notes)
    if resume:
        vocab = TagVocab.load(run_dir, config.lowercase, config.zero_digits)
    else:
        vocab = TagVocab.build(data.train, config.min_freq, config.lowercase,
                               config.zero_digits)
    pretrained = None
    if config.embeddings and not resume:
        from rnnlab.data.embeddings import load_pretrained

        found = load_pretrained(config.embeddings, vocab.words, config.word_embedding_size)
        pretrained = found.vectors
        notes.append(f"embeddings: {found.summary()}")
    torch.manual_seed(train_config.seed)
    model = build_model(config, vocab, data.scheme, pretrained).to(device)
    if not resume and distributed.is_main():
        write_run_info(run_dir, "tag", config, train_config, model, scheme=data.scheme,
                       corpus=data.name, data_notes=notes)
        vocab.save(run_dir)
    task = TagTask(model, vocab, data, config, train_config.seed)
    summary = fit_and_plot(task, train_config, run_dir, resume=resume,
                           show_progress=show_progress)
    result = {"run_dir": str(run_dir), "parameters": model.num_parameters(), "notes": notes,
              **summary, **distributed.shares(config.batch_size)}
    if not distributed.is_main():  # rank 0 scores the best weights
        return result
    load_weights(model, run_dir / MODEL_FILE)  # the best dev checkpoint, as used afterwards
    for split in ("valid", "test"):
        sentences = data.valid if split == "valid" else data.test
        if sentences:
            scores = evaluate_sentences(model, vocab, sentences, data.scheme,
                                        config.eval_batch_size)
            scores.pop("report", None)
            result[split] = {**scores, "signature": tag_signature(
                scores, data.name, split, data.scheme, config)}
    return result
