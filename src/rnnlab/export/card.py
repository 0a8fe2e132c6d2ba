"""The model card (README.md) written beside exported graphs: what the model does, on what data,
how well (with the metric's signature), the command that trained it, its limits, and how to run
the graphs with onnxruntime in a few lines of Python."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rnnlab.metrics import signature

TASK_NAMES = {"classify": "sentence classification", "tag": "sequence tagging",
              "lm": "language modelling", "translate": "translation (encoder-decoder)"}
METRICS = {"classify": "accuracy", "tag": "f1", "lm": "ppl", "translate": "bleu"}


def training_command(info: dict[str, Any]) -> str:
    """`rnnlab train TASK` with every setting of the run that differs from the defaults: it
    trains the same model again (the run folder does not keep the original command line)."""
    from rnnlab.training.config import TrainConfig

    task = info["task"]
    flags = _flags(_config_class(task), info.get("config", {}))
    flags += _flags(TrainConfig, info.get("train", {}), skip=("device",))
    return " ".join(["rnnlab train", task, *flags])


def _config_class(task: str) -> type:
    if task == "classify":
        from rnnlab.tasks.classify.config import ClassifyConfig as Config
    elif task == "tag":
        from rnnlab.tasks.tag.config import TagConfig as Config
    elif task == "lm":
        from rnnlab.tasks.lm.config import LMConfig as Config
    else:
        from rnnlab.tasks.translate.config import TranslateConfig as Config
    return Config


def _flags(config_class: type, values: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    flags = []
    for f in dataclasses.fields(config_class):
        if f.name in skip or f.name not in values or values[f.name] == f.default:
            continue
        value = values[f.name]
        flag = "--" + f.name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False:
            flags.append("--no-" + f.name.replace("_", "-"))
        else:
            flags.append(f"{flag} {value}")
    return flags


def recorded_metric(run_dir: Path, info: dict[str, Any]) -> str:
    """The best figure the run folder holds, with its signature."""
    task = info["task"]
    results = run_dir / "results.json"
    if results.exists():
        test = json.loads(results.read_text("utf-8")).get("test", {})
        if "signature" in test:
            metric = test["signature"].split("|")[0]
            return f"{metric} {test.get(metric, '?'):.4f} on test (`{test['signature']}`)"
    best = run_dir / "best.json"
    metric = METRICS[task]
    if best.exists():
        scores = json.loads(best.read_text("utf-8"))
        value = scores.get(metric, scores.get("ppl", scores.get("loss")))
        if isinstance(value, int | float):
            corpus = info.get("corpus") or info.get("config", {}).get("corpus")
            sig = signature(metric=metric, corpus=corpus, split="valid", model=task)
            return (f"{metric} {value:.4f} on the dev split at step {scores.get('step')} "
                    f"(`{sig}`); evaluate on test with `rnnlab eval RUN_DIR`")
    return "no evaluation recorded in the run folder (run `rnnlab eval RUN_DIR`)"


def model_card(run: Any, meta: dict[str, Any], run_dir: Path) -> str:  # noqa: ANN401
    info = run.info
    task = info["task"]
    config = info.get("config", {})
    corpus = config.get("corpus") or "the user's own files"
    files = ", ".join(f"`{g}`" for g in meta["graphs"])
    quantized = ("int8 (onnxruntime dynamic quantization: int8 weights of the matrix "
                 "products, activations quantized per call)" if meta.get("quantize") else
                 f"fp32; onnxruntime matches PyTorch within "
                 f"{max(meta['fp32_max_abs_diff'].values()):.1e} on the export check")
    lines = [
        f"# rnnlab {TASK_NAMES[task]} model ({_architecture(task, config)})", "",
        f"- Task: {TASK_NAMES[task]}; graphs: {files} (ONNX opset {meta['onnx_opset']}, "
        f"dynamic batch and length axes).",
        f"- Data: {corpus}" + (f" ({_data_detail(task, config)})" if _data_detail(task, config)
                               else "") + ".",
        f"- Quality: {recorded_metric(run_dir, info)}.",
        f"- Parameters: {info.get('parameters', sum(p.numel() for p in run.model.parameters()))}"
        f"; precision: {quantized}.",
        f"- Trained with: `{training_command(info)}` (rnnlab {info.get('rnnlab', '?')}, "
        f"torch {info.get('torch', '?')}); exported from `{run_dir}`.",
        "", "## Inputs and outputs", "",
    ]
    for graph in meta["graphs"]:
        lines.append(f"- `{graph}`: inputs {', '.join(meta['inputs'][graph])}; outputs "
                     f"{', '.join(meta['outputs'][graph])}.")
    lines += ["", "## Run it with onnxruntime (no rnnlab needed)", "", "```python",
              *USAGE[task](meta).strip("\n").splitlines(), "```", "", "## Limits", "",
              *[f"- {limit}" for limit in LIMITS[task](meta)],
              "- The graphs run what the model learnt from its training data only; "
              "figures above are for that data's test or dev split, not for other text.", ""]
    return "\n".join(lines)


def _transformer(config: dict[str, Any]) -> str:
    return (f"Transformer, {config.get('layers')} layers x {config.get('heads')} heads, width "
            f"{config.get('hidden')}")


def _architecture(task: str, config: dict[str, Any]) -> str:
    model = config.get("model", "rnn")
    if task == "tag":
        output = "CRF" if config.get("crf") else "softmax"
        encoder = _transformer(config) if model == "transformer" else "BiLSTM"
        return f"{encoder}-{output}, character features: {config.get('char_features')}"
    if task == "classify" and model == "cnn":
        return "TextCNN"
    if task == "classify" and model == "han":
        return f"hierarchical attention network (Yang et al. 2016), {config.get('cell')} encoders"
    if task == "classify" and model == "nbsvm":
        return f"NBSVM (Wang & Manning 2012), word 1..{config.get('ngrams')}-grams"
    if task == "classify" and model == "transformer":
        return f"{_transformer(config)}, pooling: {config.get('pooling')}"
    if task == "lm" and model == "transformer":
        return f"GPT: {_transformer(config)}, block size {config.get('block_size')}"
    if task == "translate" and model == "transformer":
        return f"{_transformer(config)} encoder-decoder"
    if task == "translate" and model == "conv":
        return (f"ConvS2S, {config.get('layers')} layers, kernel {config.get('kernel')}, "
                f"{config.get('hidden')} channels")
    if task == "translate":
        return f"{config.get('cell')} encoder-decoder, attention: {config.get('attention')}"
    return str(config.get("cell"))


def _data_detail(task: str, config: dict[str, Any]) -> str:
    if task == "tag":
        return f"tag scheme {config.get('scheme')}"
    if task == "translate":
        return f"{config.get('src_lang')} -> {config.get('tgt_lang')}"
    if task == "lm":
        return f"level {config.get('level') or 'the corpus default'}"
    return ""


def _han_usage(meta: dict[str, Any]) -> str:
    lower = ".lower()" if meta["lowercase"] else ""
    return f'''
import json, re, numpy as np, onnxruntime as ort
from sentences import split_sentences  # the training's sentence rule, shipped beside this card
itos = json.load(open("vocab.json"))["itos"]; stoi = {{w: i for i, w in enumerate(itos)}}
labels = json.load(open("labels.json"))
text = "A gripping, funny film. The plot drags, though!"
pattern = re.compile({meta["token_pattern"]!r})
words = [w for w in (pattern.findall(s{lower}) for s in split_sentences(text)) if w]
width, most = {meta["max_sentence_len"]}, {meta["max_sentences"]}  # long sentences: cut in pieces
pieces = [w[i:i + width] for w in words for i in range(0, len(w), width)][:most]
ids = [[stoi.get(t, {meta["unk_id"]}) for t in p] for p in pieces]
longest = max(map(len, ids))
tokens = np.array([[row + [{meta["pad_id"]}] * (longest - len(row)) for row in ids]])
session = ort.InferenceSession("classifier.onnx")
probabilities, sentence_weights, word_weights = session.run(None, {{
    "tokens": tokens, "sentence_counts": np.array([len(ids)]),
    "word_lengths": np.array([[len(row) for row in ids]])}})
print(labels[int(probabilities[0].argmax())], sentence_weights[0])
'''


def _nbsvm_usage(meta: dict[str, Any]) -> str:
    lower = ".lower()" if meta["lowercase"] else ""
    return f'''
import json, re, numpy as np, onnxruntime as ort
itos = json.load(open("vocab.json"))["itos"]; stoi = {{w: i for i, w in enumerate(itos)}}
labels = json.load(open("labels.json"))
text = re.sub(r"<br\\s*/?>", " ", "A gripping, funny film.<br />Not bad at all.")  # IMDB's breaks
tokens = re.findall({meta["token_pattern"]!r}, text{lower})
n = {meta["ngrams"]}  # distinct word n-grams of lengths 1..n, first seen first
grams = dict.fromkeys({meta["ngram_join"]!r}.join(tokens[i:i + k]) for k in range(1, n + 1)
                      for i in range(len(tokens) - k + 1))
ids = [stoi[g] for g in grams if g in stoi] or [{meta["unk_id"]}]  # unseen n-grams are dropped
session = ort.InferenceSession("classifier.onnx")
probabilities, = session.run(None, {{"tokens": np.array([ids]), "lengths": np.array([len(ids)])}})
print(labels[int(probabilities[0].argmax())], probabilities[0])
'''


def _classify_usage(meta: dict[str, Any]) -> str:
    if meta.get("model") == "han":
        return _han_usage(meta)
    if meta.get("model") == "nbsvm":
        return _nbsvm_usage(meta)
    return f'''
import json, re, numpy as np, onnxruntime as ort
itos = json.load(open("vocab.json"))["itos"]; stoi = {{w: i for i, w in enumerate(itos)}}
labels = json.load(open("labels.json"))
tokens = re.findall({meta["token_pattern"]!r}, "a gripping, funny film".lower())[:{meta["max_len"]}]
ids = [stoi.get(t, {meta["unk_id"]}) for t in tokens]
ids += [{meta["pad_id"]}] * max(0, {meta["min_length"]} - len(ids))  # the model's shortest input
session = ort.InferenceSession("classifier.onnx")
outputs = session.run(None, {{"tokens": np.array([ids]), "lengths": np.array([len(tokens)])}})
print(labels[int(outputs[0][0].argmax())], outputs[0][0])  # outputs[1]: attention, if any
'''


def _tag_usage(meta: dict[str, Any]) -> str:
    return '''
# tag_decoder.py (beside this card) encodes words, runs tagger.onnx and decodes the tags
# (Viterbi over crf.json's scores for a CRF); it imports only numpy and onnxruntime.
from tag_decoder import Tagger
tagger = Tagger(".")
print(tagger.tag([["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]]))
# or from a shell: python tag_decoder.py . < sentences.txt   (one sentence a line)
'''


def _gpt_usage(meta: dict[str, Any]) -> str:
    empty = f'np.zeros(({meta["layers"]}, 1, {meta["heads"]}, 0, {meta["head_dim"]}), np.float32)'
    return f'''
import json, numpy as np, onnxruntime as ort
itos = json.load(open("vocab.json"))["itos"]
session = ort.InferenceSession("lm_step.onnx"); rng = np.random.default_rng(0)
window = [{meta["context_id"]}]  # the tokens read so far (the prompt's ids)
feed, keys, values = window, {empty}, {empty}
for _ in range(40):  # sample 40 tokens; the key/value cache carries the prefix
    logits, keys, values = session.run(None, {{"tokens": np.array([feed]), "keys": keys,
                                               "values": values}})
    p = np.exp(logits[0] - logits[0].max()); p /= p.sum()
    token = int(rng.choice(len(p), p=p)); print(itos[token], end=" ")
    window.append(token); feed = [token]
    if keys.shape[3] + 1 > {meta["block_size"]}:  # the context is full: read the last
        window = window[-{meta["block_size"]}:]  # block_size tokens afresh (as nanoGPT)
        feed, keys, values = window, {empty}, {empty}
'''


def _lm_usage(meta: dict[str, Any]) -> str:
    if meta.get("model") == "transformer":
        return _gpt_usage(meta)
    states = ", ".join(f'"{s}": np.zeros(({meta["layers"]}, 1, {meta["hidden"]}), np.float32)'
                       for s in (["h", "c"] if meta["cell"].startswith("lstm") else ["h"]))
    return f'''
import json, numpy as np, onnxruntime as ort
itos = json.load(open("vocab.json"))["itos"]
session = ort.InferenceSession("lm_step.onnx"); rng = np.random.default_rng(0)
token, state = {meta["context_id"]}, {{{states}}}
for _ in range(40):  # sample 40 tokens, one step each; the state carries the prefix
    logits, *new = session.run(None, {{"tokens": np.array([token]), **state}})
    state = dict(zip(state, new)); p = np.exp(logits[0] - logits[0].max()); p /= p.sum()
    token = int(rng.choice(len(p), p=p)); print(itos[token], end=" ")
'''


def _translate_usage(meta: dict[str, Any]) -> str:
    longest = meta.get("max_output_length")
    clamp = f"\nlimit = min(limit, {longest})  # the positions the model learned" if longest else ""
    return f'''
import json, numpy as np, onnxruntime as ort
src_stoi = {{w: i for i, w in enumerate(json.load(open("src_vocab.json"))["itos"])}}
tgt_itos = json.load(open("tgt_vocab.json"))["itos"]
encoder, step = ort.InferenceSession("encoder.onnx"), ort.InferenceSession("decoder_step.onnx")
words = "ein mann fährt fahrrad .".split() + ["<eos>"]  # lower-cased words, closing <eos>
src = np.array([[src_stoi.get(w, 1) for w in words]])
lengths = np.array([src.shape[1]])
state = dict(zip({meta["state"]!r}, encoder.run(None, {{"src": src, "lengths": lengths}})))
token, out = {meta["bos_id"]}, []
limit = int(src.shape[1] * {meta["max_len_ratio"]}) + {meta["max_len_extra"]}{clamp}
for _ in range(limit - 1):  # greedy; at the limit the output ends (its last token is <eos>)
    logits, *rest = step.run(None, {{"tokens": np.array([token]), **state}})
    token = int(logits[0].argmax())
    if token == {meta["eos_id"]}: break
    out.append(tgt_itos[token])
    names = [o.name.removesuffix("_out") for o in step.get_outputs()[1:]]
    state.update({{n: v for n, v in zip(names, rest) if n in state}})
print(" ".join(out))
'''


USAGE = {"classify": _classify_usage, "tag": _tag_usage, "lm": _lm_usage,
         "translate": _translate_usage}

LIMITS = {
    "classify": lambda m: [f"Texts are lower-cased ({m['lowercase']}) and cut to {m['max_len']} "
                           "tokens by the token pattern above; words unseen in training read "
                           "as <unk>.", f"Labels: {', '.join(m['labels'])}."],
    "tag": lambda m: ["Input is tokenized sentences (a list of words each); the tagger does not "
                      "split text into words.", f"Tags ({m['scheme']}): {', '.join(m['tags'])}."],
    "lm": lambda m: [f"Tokens are {m['tokenizer'].get('name')}-level as in training; sampling, "
                     "temperature and top-k/top-p are the client's loop over the step graph."]
    + ([f"The context is {m['block_size']} tokens: positions past it do not exist, so the "
        "client restarts the cache from the last block_size tokens (shown above)."]
       if m.get("model") == "transformer" else []),
    "translate": lambda m: ["Greedy decoding is shown; beam search is the client's loop over the "
                            "same step graph (reorder the state along each input's `batch` "
                            "axis, which meta.json's dynamic_axes names, by the kept beams).",
                            f"Tokenization: {m['tokenization']}, lower-cased."],
}
