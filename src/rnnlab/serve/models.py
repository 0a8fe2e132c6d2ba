"""One adapter per task between a trained run and the server.

Each adapter reads its run back with the task's own run class (`ClassifyRun`, `TagRun`,
`TranslateRun`, `LMRun`), turns a micro-batch of requests into one call of that class, and
answers with the same records as the CLI's `--format json`. Adapters know nothing of HTTP; the
app (app.py) knows nothing of tasks beyond the names of their actions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.metrics import signature
from rnnlab.training.checkpoint import CONFIG_FILE, read_json

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # safe in a URL path
DEV_METRICS = ("f1", "bleu", "ppl", "accuracy", "loss")  # the first in best.json is shown


def finite(value: float) -> float | None:
    """JSON has no infinity or NaN: a log-probability of -inf (an n-gram's unseen event) is
    sent as null."""
    return value if math.isfinite(value) else None


class ServedModel:
    """What the app asks of every adapter."""

    task: str
    actions: tuple[str, ...]  # the endpoints /models/{name}/{action}

    def __init__(self, name: str, run_dir: Path, info: dict[str, Any], device: str) -> None:
        self.name, self.run_dir, self.info, self.device = name, run_dir, info, device

    def run_batch(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        """One result per payload; `key` is what every payload of the batch shares."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The /models entry: task, corpus, the dev metric of the saved checkpoint, and its
        signature (how the number was made)."""
        config = self.info.get("config", {})
        own = any(config.get(key) for key in ("train", "src_train"))  # paths stay private
        corpus = "own files" if own else config.get("corpus") or "own files"
        entry: dict[str, Any] = {"name": self.name, "task": self.task, "corpus": corpus,
                                 "parameters": self.info.get("parameters"),
                                 "endpoints": {a: f"/models/{self.name}/{a}"
                                               for a in self.actions}}
        best_path = self.run_dir / "best.json"
        best = read_json(best_path) if best_path.is_file() else {}
        metric = next((m for m in DEV_METRICS if isinstance(best.get(m), int | float)), None)
        if metric is not None:
            entry["metric"] = {"name": metric, "value": best[metric], "split": "valid",
                               "step": best.get("step")}
            entry["signature"] = signature(metric=metric, corpus=corpus, split="valid",
                                           model=self.task)
        else:
            entry["metric"] = None
            entry["signature"] = None
        return entry


class ClassifyModel(ServedModel):
    task = "classify"
    actions = ("classify",)

    def __init__(self, name: str, run_dir: Path, info: dict[str, Any], device: str) -> None:
        from rnnlab.tasks.classify.run import ClassifyRun

        super().__init__(name, run_dir, info, device)
        self.run = ClassifyRun(run_dir, device)

    def run_batch(self, key: Hashable, payloads: list[list[str]]) -> list[list[dict]]:
        texts = [text for payload in payloads for text in payload]
        records = [p.to_json() for p in self.run.predict(texts)]
        return _split(records, payloads)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "labels": self.run.labels,
                "attention": has_word_weights(self.run.config)}


def has_word_weights(config: Any) -> bool:  # noqa: ANN401 - a ClassifyConfig
    """Whether a classifier's answers carry attention weights: a recurrent or Transformer
    encoder with attention or structured pooling (word weights; structured: the mean of its
    hops), or a HAN (sentence and word weights)."""
    if config.model == "han":
        return True
    return config.model in ("rnn", "transformer") and config.pooling in ("attention",
                                                                         "structured")


class TagModel(ServedModel):
    task = "tag"
    actions = ("tag",)

    def __init__(self, name: str, run_dir: Path, info: dict[str, Any], device: str) -> None:
        from rnnlab.tasks.tag.run import TagRun

        super().__init__(name, run_dir, info, device)
        self.run = TagRun(run_dir, device)

    def run_batch(self, key: Hashable, payloads: list[list[str]]) -> list[list[dict]]:
        """Key: the output scheme. Each sentence is split on whitespace, as `rnnlab tag` reads
        a line; entities come with word spans and character spans into the sentence."""
        sentences = [text for payload in payloads for text in payload]
        words = [sentence.split() for sentence in sentences]
        tags = self.run.tag(words, str(key))
        records = [self._record(s, w, t) for s, w, t in zip(sentences, words, tags, strict=True)]
        return _split(records, payloads)

    def _record(self, sentence: str, words: list[str], tags: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {"words": words, "tags": tags}
        if self.run.scheme != "none":
            record["entities"] = entities(sentence, words, tags)
        return record

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scheme": self.run.scheme,
                "tags": list(self.run.vocab.tags)}


def entities(sentence: str, words: list[str], tags: list[str]) -> list[dict[str, Any]]:
    """Entities of BIO/BIOES/IOB1 tags (seqeval's reading, as the F1 is computed), each with
    its words [start, end) and characters [char_start, char_end) in `sentence`."""
    from seqeval.metrics.sequence_labeling import get_entities

    offsets, position = [], 0
    for word in words:
        start = sentence.index(word, position)
        offsets.append((start, start + len(word)))
        position = start + len(word)
    found = []
    for label, first, last in get_entities(tags):
        found.append({"type": label, "start": first, "end": last + 1,
                      "char_start": offsets[first][0], "char_end": offsets[last][1],
                      "text": sentence[offsets[first][0]: offsets[last][1]]})
    return found


class TranslateModel(ServedModel):
    task = "translate"
    actions = ("translate",)

    def __init__(self, name: str, run_dir: Path, info: dict[str, Any], device: str) -> None:
        from rnnlab.tasks.translate.run import TranslateRun

        super().__init__(name, run_dir, info, device)
        self.run = TranslateRun(run_dir, device)

    def run_batch(self, key: Hashable, payloads: list[list[str]]) -> list[list[dict]]:
        """Key: (beam, alpha, n_best), which every sentence of one search must share."""
        beam, alpha, n_best = key  # type: ignore[misc]
        lines = [line for payload in payloads for line in payload]
        records = []
        for result in self.run.translate(lines, beam, alpha, n_best=n_best):
            ranked = [(result.text, result.score), *result.alternatives]
            records.append({
                "source": result.source, "translation": result.text,
                "score": finite(result.score),
                "n_best": [{"translation": text, "score": finite(score)}
                           for text, score in ranked],
                "source_tokens": result.source_tokens, "target_tokens": result.target_tokens,
                "attention": None if result.weights is None else result.weights.tolist()})
        return _split(records, payloads)

    def describe(self) -> dict[str, Any]:
        config = self.run.config
        return {**super().describe(), "beam": config.beam, "alpha": config.alpha,
                "attention": config.model != "rnn" or config.attention != "none"}


class LanguageModel(ServedModel):
    task = "lm"
    actions = ("sample", "score")

    def __init__(self, name: str, run_dir: Path, info: dict[str, Any], device: str) -> None:
        from rnnlab.tasks.lm.run import LMRun

        super().__init__(name, run_dir, info, device)
        self.run = LMRun(run_dir, device)
        self.task = self.run.task  # lm or ngram: both sample and score

    def run_batch(self, key: Hashable, payloads: list[list[str]]) -> list[list[dict]]:
        """Scores each text (the model reads one stream at a time, so a batch is a loop)."""
        results = []
        for texts in payloads:
            records = []
            for text in texts:
                score = self.run.score(text)
                records.append({
                    "text": text, "log_prob": finite(score.total), "tokens": len(score.tokens),
                    "perplexity": finite(score.perplexity) if score.total > -math.inf else None,
                    "token_log_probs": [[t, finite(lp)] for t, lp in
                                        zip(score.tokens, score.log_probs, strict=True)]})
            results.append(records)
        return results

    def sample(self, prime: str, length: int, **options: Any) -> Iterator[str]:
        """The text of one sample, a token at a time (the prime is not repeated). A top_k
        beyond the vocabulary filters nothing, as in HF's TopKLogitsWarper."""
        return self.run.generate(prime, length, **options)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "level": self.run.tokenizer.name,
                "vocab": len(self.run.vocab)}


ADAPTERS: dict[str, type[ServedModel]] = {
    "classify": ClassifyModel, "tag": TagModel, "translate": TranslateModel,
    "lm": LanguageModel, "ngram": LanguageModel,
}


def _split(records: list[Any], payloads: list[Sequence[Any]]) -> list[list[Any]]:
    """`records` (one per item of all payloads, in order) cut back into one list per payload."""
    out, start = [], 0
    for payload in payloads:
        out.append(records[start: start + len(payload)])
        start += len(payload)
    return out


def load_model(run_dir: str | Path, name: str | None = None, device: str = "auto"
               ) -> ServedModel:
    """The run of `run_dir` behind the adapter of its task, named `name` (default: the
    folder's name)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise RnnlabError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    name = name or run_dir.resolve().name
    if not NAME_PATTERN.match(name):
        raise RnnlabError(f"model name {name!r} is not usable in a URL: use letters, digits, "
                          "'.', '_' and '-' (give one with --name)")
    from rnnlab.tasks.registry import run_task

    task = run_task(run_dir)  # config.json read (and checked) where every run is read
    if task not in ADAPTERS:
        raise RnnlabError(f"{run_dir} holds a {task!r} run, which rnnlab serve cannot serve "
                          f"(it serves {', '.join(sorted(ADAPTERS))})")
    from rnnlab.tasks.registry import load_run

    return ADAPTERS[task](name, run_dir, dict(load_run(run_dir, task=task).record), device)


def load_models(run_dirs: Sequence[str | Path], names: Sequence[str] = (),
                device: str = "auto") -> dict[str, ServedModel]:
    """Every run, by name; names must be unique (two folders both called `best`: use --name)."""
    if names and len(names) != len(run_dirs):
        raise RnnlabError(f"{len(names)} --name values for {len(run_dirs)} run directories: "
                          "give one name per run, in the same order")
    models: dict[str, ServedModel] = {}
    for index, run_dir in enumerate(run_dirs):
        model = load_model(run_dir, names[index] if names else None, device)
        if model.name in models:
            raise RnnlabError(f"two runs are both named {model.name!r}: give each a --name")
        models[model.name] = model
    if not models:
        raise RnnlabError("no run directory to serve")
    return models
