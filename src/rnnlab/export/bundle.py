"""Per task: which graphs to export, and what a client needs beside them to turn text into the
graphs' inputs and their outputs back into text (vocabularies, labels, tokenization settings,
special ids, CRF scores, the standalone tag decoder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.export import graphs

RUNTIME_DIR = Path(__file__).parent / "runtime"
TAG_DECODER = "tag_decoder.py"
# HAN's sentence splitter: a rule in plain Python (no rnnlab imports), shipped as it is
SENTENCE_SPLITTER = Path(__file__).parents[1] / "data" / "sentences.py"
RECURRENT = ("rnn", "han")  # classifiers built from a recurrent --cell


def task_bundle(run: Any) -> tuple[list[graphs.GraphSpec], dict[str, Any]]:  # noqa: ANN401
    """The graph specs of `run`'s model and the task's entries of meta.json."""
    task = run.info["task"]
    if task == "classify":
        return _classify(run)
    if task == "tag":
        return _tag(run)
    if task == "lm":
        return _lm(run)
    if task == "translate":
        return _translate(run)
    raise RnnlabError(f"cannot export a {task!r} run")


def _classify(run: Any) -> tuple[list[graphs.GraphSpec], dict[str, Any]]:  # noqa: ANN401
    from rnnlab.tasks.classify.data import _TOKEN
    from rnnlab.tasks.classify.model import min_length

    config = run.config
    meta = {"labels": run.labels, "lowercase": config.lowercase, "max_len": config.max_len,
            "min_length": min_length(config), "token_pattern": _TOKEN.pattern,
            "model": config.model, "cell": config.cell if config.model in RECURRENT else None,
            "pad_id": run.vocab.pad_id, "unk_id": run.vocab.unk_id}
    copy: list[str] = []
    if config.model == "han":
        from rnnlab.export.document_graphs import han_graphs

        specs = han_graphs(run.model, len(run.vocab))
        meta.update(max_sentences=config.max_sentences, max_sentence_len=config.max_sentence_len,
                    sentence_splitter=SENTENCE_SPLITTER.name)
        copy.append(SENTENCE_SPLITTER)
    else:
        specs = graphs.classifier_graphs(run.model, len(run.vocab))
    if config.model == "nbsvm":
        from rnnlab.tasks.classify.documents import NGRAM_JOIN

        meta.update(ngrams=config.ngrams, ngram_join=NGRAM_JOIN)
    return specs, {"meta": meta, "vocab": {"vocab.json": run.vocab},
                   "json": {"labels.json": run.labels}, "copy": copy}


def _tag(run: Any) -> tuple[list[graphs.GraphSpec], dict[str, Any]]:  # noqa: ANN401
    vocab, model = run.vocab, run.model
    specs = graphs.tagger_graphs(model, len(vocab.words), len(vocab.chars))
    meta = {"tags": vocab.tags, "scheme": run.scheme, "lowercase": vocab.lowercase,
            "zero_digits": vocab.zero_digits, "crf": model.crf is not None,
            "char_features": run.config.char_features, "decoder": TAG_DECODER,
            "model": run.config.model}
    if run.config.model == "transformer":
        from rnnlab.tasks.tag.model import MAX_WORDS

        meta["max_words"] = MAX_WORDS  # the positions it learned
    files: dict[str, Any] = {"tags.json": vocab.tags}
    if model.crf is not None:
        crf = model.crf
        files["crf.json"] = {
            "start": crf.start.tolist(), "transitions": crf.transitions.tolist(),
            "end": crf.end.tolist(), "allowed_start": crf.allowed_start.tolist(),
            "allowed_transitions": crf.allowed_transitions.tolist(),
            "allowed_end": crf.allowed_end.tolist()}
    return specs, {"meta": meta, "vocab": {"vocab.json": vocab.words, "chars.json": vocab.chars},
                   "json": files, "copy": [TAG_DECODER]}


def _lm(run: Any) -> tuple[list[graphs.GraphSpec], dict[str, Any]]:  # noqa: ANN401
    config = run.model.config
    meta = {"tokenizer": run.info["tokenizer"], "model": config.model, "layers": config.layers,
            "hidden": config.hidden, "context_id": run.context_id(),
            "pad_id": run.vocab.pad_id, "bos_id": run.vocab.bos_id, "eos_id": run.vocab.eos_id}
    if config.model == "transformer":
        from rnnlab.export.transformer_graphs import gpt_graphs

        specs = gpt_graphs(run.model, len(run.vocab))
        meta.update(cell=None, heads=config.heads, head_dim=config.hidden // config.heads,
                    block_size=config.block_size)
    else:
        specs = graphs.lm_graphs(run.model, len(run.vocab))
        meta["cell"] = config.cell
    if meta["tokenizer"].get("name") == "subword":
        meta["tokenizer"] = {"name": "subword", "model": "tokenizer.json"}
    return specs, {"meta": meta, "vocab": {"vocab.json": run.vocab},
                   "json": {"tokenizer.json": run.info["tokenizer"]}}


def _translate(run: Any) -> tuple[list[graphs.GraphSpec], dict[str, Any]]:  # noqa: ANN401
    config, model = run.config, run.model
    sizes = (len(run.src_vocab), len(run.tgt_vocab))
    if config.model == "transformer":
        from rnnlab.export.transformer_graphs import transformer_translate_graphs

        specs = transformer_translate_graphs(model, *sizes)
    elif config.model == "conv":
        from rnnlab.export.conv_graphs import conv_translate_graphs

        specs = conv_translate_graphs(model, *sizes)
    else:
        specs = graphs.translate_graphs(model, *sizes)
    recurrent = config.model == "rnn"
    meta = {"model": config.model, "cell": config.cell if recurrent else None,
            "attention": config.attention if recurrent else config.model,
            "tokenization": f"subword{config.subwords}" if config.subwords else "word",
            "bos_id": run.tgt_vocab.bos_id, "eos_id": run.tgt_vocab.eos_id,
            "max_len_ratio": config.max_len_ratio, "max_len_extra": config.max_len_extra,
            "max_output_length": model.max_output_length,
            "source_eos": True, "state": specs[0].outputs}
    return specs, {"meta": meta,
                   "vocab": {"src_vocab.json": run.src_vocab, "tgt_vocab.json": run.tgt_vocab},
                   "json": {"src_tokenizer.json": run.info["src_tokenizer"],
                            "tgt_tokenizer.json": run.info["tgt_tokenizer"]}}


def write_side_files(run: Any, out: Path, extras: dict[str, Any]) -> list[str]:  # noqa: ANN401
    """Vocabularies, JSON files and the runtime helpers beside the graphs; their names."""
    written = []
    for name, vocab in extras.get("vocab", {}).items():
        vocab.save(out / name)
        written.append(name)
    for name, value in extras.get("json", {}).items():
        (out / name).write_text(json.dumps(value, ensure_ascii=False) + "\n", "utf-8")
        written.append(name)
    for name in extras.get("copy", []):  # a runtime helper's name, or a path
        source = name if isinstance(name, Path) else RUNTIME_DIR / name
        shutil.copyfile(source, out / source.name)
        written.append(source.name)
    return written
