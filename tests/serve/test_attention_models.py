"""`rnnlab serve` with the non-recurrent models: a Transformer classifier (structured pooling),
tagger, GPT and translator, a ConvS2S translator and a HAN classifier, each a tiny trained run,
answer every endpoint as their run classes answer the CLI, and /models says which carry
attention weights."""

from __future__ import annotations

import json
import math

import pytest
import torch
from fastapi.testclient import TestClient

from rnnlab.serve.app import create_app
from rnnlab.serve.limits import ServeLimits
from rnnlab.tasks.lm.run import LMRun

NAMES = ("gpt-cls", "han-cls", "gpt-ner", "gpt-chars", "gpt-de-en", "conv-de-en")


@pytest.fixture(scope="module")
def models(attention_runs) -> dict:
    from rnnlab.serve.models import load_models

    torch.set_num_threads(1)
    return load_models([attention_runs[name] for name in NAMES], device="cpu")


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(models, ServeLimits())) as client:
        yield client


def test_models_list_every_run_and_which_have_attention(client):
    listing = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert list(listing) == list(NAMES)
    assert {name: m["task"] for name, m in listing.items()} == {
        "gpt-cls": "classify", "han-cls": "classify", "gpt-ner": "tag", "gpt-chars": "lm",
        "gpt-de-en": "translate", "conv-de-en": "translate"}
    assert listing["gpt-cls"]["attention"] is True  # structured pooling: word weights
    assert listing["han-cls"]["attention"] is True  # sentence and word weights
    assert listing["gpt-de-en"]["attention"] and listing["conv-de-en"]["attention"]


def test_transformer_classifier_answers_with_word_weights(client, models):
    texts = ["a gripping , funny film", "dull and slow"]
    answer = client.post("/models/gpt-cls/classify", json={"texts": texts}).json()
    expected = [p.to_json() for p in models["gpt-cls"].run.predict(texts)]
    assert answer["predictions"] == pytest.approx(expected)
    for record in answer["predictions"]:
        assert len(record["attention"]) == len(record["tokens"])
        assert math.isclose(sum(record["attention"]), 1.0, rel_tol=1e-5)


def test_han_classifier_answers_with_sentence_and_word_weights(client, models):
    texts = ["A gripping, funny film. It is lovely!"]
    answer = client.post("/models/han-cls/classify", json={"texts": texts}).json()
    expected = [p.to_json() for p in models["han-cls"].run.predict(texts)]
    assert answer["predictions"] == pytest.approx(expected)
    record = answer["predictions"][0]
    assert len(record["sentence_attention"]) == len(record["sentences"]) == 2
    assert math.isclose(sum(record["sentence_attention"]), 1.0, rel_tol=1e-5)
    for words, weights in zip(record["sentences"], record["word_attention"], strict=True):
        assert len(words) == len(weights) and math.isclose(sum(weights), 1.0, rel_tol=1e-5)


def test_transformer_tagger_answers_as_the_cli(client, models):
    sentence = "Peter Blackburn rejects EU"
    answer = client.post("/models/gpt-ner/tag", json={"sentences": [sentence]}).json()
    assert answer["sentences"][0]["tags"] == models["gpt-ner"].run.tag([sentence.split()])[0]


@pytest.mark.parametrize("name", ["gpt-de-en", "conv-de-en"])
@pytest.mark.parametrize("beam", [1, 3])
def test_translators_answer_as_the_cli_with_attention(client, models, name, beam):
    lines = ["ein hund läuft", "der mann isst"]
    answer = client.post(f"/models/{name}/translate",
                         json={"texts": lines, "beam": beam, "n_best": 2}).json()
    expected = models[name].run.translate(lines, beam, n_best=min(beam, 2))
    for record, result in zip(answer["translations"], expected, strict=True):
        assert record["translation"] == result.text
        assert record["score"] == pytest.approx(result.score)
        assert len(record["n_best"]) == min(beam, 2)
        attention = torch.tensor(record["attention"])
        assert attention.shape == (len(record["target_tokens"]), len(record["source_tokens"]))
        assert torch.allclose(attention.sum(1), torch.ones(len(attention)), atol=1e-4)


def test_gpt_scores_and_samples_as_the_cli(client, attention_runs):
    lm = LMRun(attention_runs["gpt-chars"], "cpu")
    text = "line 3 says hello to the little world"  # longer than the block size of 16
    record = client.post("/models/gpt-chars/score", json={"texts": [text]}).json()["scores"][0]
    assert record["log_prob"] == pytest.approx(lm.score(text).total, rel=1e-5)
    response = client.post("/models/gpt-chars/sample",
                           json={"prime": "line", "length": 20, "seed": 3, "top_k": 5})
    events = [block.split("\n") for block in response.text.strip().split("\n\n")]
    assert [kind for kind, _ in events] == ["event: token"] * 20 + ["event: end"]
    tokens = [json.loads(data.removeprefix("data: "))["text"]
              for _, data in events[:-1]]
    assert tokens == list(lm.generate("line", 20, seed=3, top_k=5))
