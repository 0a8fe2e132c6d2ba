"""Every endpoint of `rnnlab serve` through an in-process client, checked against the run
classes the CLI uses (the oracle: the API answers what `--format json` prints), and every
error a client can cause: each a 4xx with a one-line message."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from rnnlab.serve.app import create_app
from rnnlab.serve.limits import ServeLimits
from rnnlab.serve.models import entities
from rnnlab.tasks.lm.run import LMRun

pytestmark = pytest.mark.usefixtures("one_thread")


def _client(models, **options):
    limits = options.pop("limits", ServeLimits())
    return TestClient(create_app(models, limits, **options))


@pytest.fixture(scope="module")
def client(models):
    with _client(models) as client:
        yield client


def _one_line_error(response, status):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail
    return detail


def test_health_and_models(client, runs):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == ["sentiment", "ner", "de-en", "chars"]
    listing = client.get("/models").json()
    by_name = {m["name"]: m for m in listing["models"]}
    assert {name: m["task"] for name, m in by_name.items()} == {
        "sentiment": "classify", "ner": "tag", "de-en": "translate", "chars": "lm"}
    assert by_name["chars"]["endpoints"] == {"sample": "/models/chars/sample",
                                             "score": "/models/chars/score"}
    best = json.loads((runs["ner"] / "best.json").read_text())
    assert by_name["ner"]["metric"]["name"] == "f1"
    assert by_name["ner"]["metric"]["value"] == best["f1"]
    assert by_name["ner"]["signature"].startswith("f1|corpus:own files|split:valid")
    assert by_name["sentiment"]["labels"] == ["neg", "pos"] and by_name["sentiment"]["attention"]
    assert listing["limits"]["max_batch"] == ServeLimits().max_batch
    assert str(runs["ner"].parent) not in json.dumps(listing)  # no server paths leak


def test_classify_answers_as_the_cli(client, models):
    texts = ["a gripping , funny film", "dull and slow", "lovely"]
    answer = client.post("/models/sentiment/classify", json={"texts": texts}).json()
    expected = [p.to_json() for p in models["sentiment"].run.predict(texts)]
    assert answer["predictions"] == pytest.approx(expected)
    for record in answer["predictions"]:
        assert math.isclose(sum(record["probabilities"].values()), 1.0, rel_tol=1e-5)
        assert len(record["attention"]) == len(record["tokens"])
        assert math.isclose(sum(record["attention"]), 1.0, rel_tol=1e-5)


def test_tag_answers_as_the_cli_with_entity_spans(client, models):
    sentence = "Peter  Blackburn rejects EU"  # two spaces: character spans must still be right
    answer = client.post("/models/ner/tag", json={"sentences": [sentence]}).json()
    record = answer["sentences"][0]
    assert record["tags"] == models["ner"].run.tag([sentence.split()])[0]
    assert record["words"] == sentence.split()
    for entity in record["entities"]:
        assert sentence[entity["char_start"]: entity["char_end"]] == entity["text"]
        assert " ".join(record["words"][entity["start"]: entity["end"]]) == \
            " ".join(entity["text"].split())
    bioes = client.post("/models/ner/tag", json={"sentences": [sentence],
                                                 "output_scheme": "bioes"}).json()
    assert bioes["sentences"][0]["tags"] == models["ner"].run.tag([sentence.split()],
                                                                   "bioes")[0]


def test_entities_by_hand():
    sentence = "Peter Blackburn visits  BRUSSELS ."
    words = sentence.split()
    found = entities(sentence, words, ["B-PER", "I-PER", "O", "B-LOC", "O"])
    assert found == [
        {"type": "PER", "start": 0, "end": 2, "char_start": 0, "char_end": 15,
         "text": "Peter Blackburn"},
        {"type": "LOC", "start": 3, "end": 4, "char_start": 24, "char_end": 32,
         "text": "BRUSSELS"}]


@pytest.mark.parametrize("beam", [1, 3])
def test_translate_answers_as_the_cli_with_attention(client, models, beam):
    lines = ["ein hund läuft", "der mann isst"]
    answer = client.post("/models/de-en/translate", json={"texts": lines, "beam": beam}).json()
    expected = models["de-en"].run.translate(lines, beam)
    for record, result in zip(answer["translations"], expected, strict=True):
        assert record["translation"] == result.text and record["source"] == result.source
        assert record["score"] == pytest.approx(result.score) and record["score"] <= 0
        assert record["n_best"][0] == {"translation": result.text,
                                       "score": pytest.approx(result.score)}
        assert len(record["n_best"]) == 1
        attention = torch.tensor(record["attention"])
        assert attention.shape == (len(record["target_tokens"]), len(record["source_tokens"]))
        assert torch.allclose(attention.sum(1), torch.ones(len(attention)), atol=1e-4)


def test_translate_n_best(client, models):
    answer = client.post("/models/de-en/translate",
                         json={"texts": ["ein hund läuft"], "beam": 4, "n_best": 3}).json()
    record = answer["translations"][0]
    expected = models["de-en"].run.translate(["ein hund läuft"], 4, n_best=3)[0]
    assert [h["translation"] for h in record["n_best"]] == \
        [expected.text, *(text for text, _ in expected.alternatives)]
    assert record["n_best"][0]["translation"] == record["translation"]
    assert len(record["n_best"]) == 3
    scores = [h["score"] for h in record["n_best"]]
    assert scores[0] == pytest.approx(expected.score)
    greedy = client.post("/models/de-en/translate",
                         json={"texts": ["ein hund läuft"], "beam": 1, "n_best": 3}).json()
    assert len(greedy["translations"][0]["n_best"]) == 1  # a beam of 1 has one hypothesis


def test_score_answers_as_the_cli(client, runs):
    texts = ["line 3 says hello", "world"]
    answer = client.post("/models/chars/score", json={"texts": texts}).json()
    lm = LMRun(runs["chars"], "cpu")
    for record, text in zip(answer["scores"], texts, strict=True):
        expected = lm.score(text)
        assert record["log_prob"] == pytest.approx(expected.total)
        assert record["perplexity"] == pytest.approx(expected.perplexity)
        assert [t for t, _ in record["token_log_probs"]] == expected.tokens


def _events(text):
    events = []
    for block in text.strip().split("\n\n"):
        kind, data = block.split("\n")
        events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_sample_streams_the_same_tokens_as_the_cli(client, runs):
    options = {"temperature": 0.7, "top_k": 5, "top_p": 0.9}
    response = client.post("/models/chars/sample",
                           json={"prime": "line", "length": 12, "seed": 3, **options})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert [kind for kind, _ in events] == ["token"] * 12 + ["end"]
    assert events[-1][1]["tokens"] == 12
    expected = list(LMRun(runs["chars"], "cpu").generate("line", 12, seed=3, **options))
    assert [data["text"] for _, data in events[:-1]] == expected
    greedy = client.post("/models/chars/sample", json={"length": 3, "greedy": True}).text
    assert [kind for kind, _ in _events(greedy)] == ["token"] * 3 + ["end"]


def _close(answer, expected) -> bool:
    """The same predictions, their numbers equal up to float32 rounding: a sentence alone and
    a batch run different kernels (recurrent.py, `looks_up_inputs`)."""
    if isinstance(expected, dict):
        return answer.keys() == expected.keys() and all(_close(answer[k], v)
                                                        for k, v in expected.items())
    if isinstance(expected, list):
        return len(answer) == len(expected) and all(map(_close, answer, expected))
    if isinstance(expected, float):
        return answer == pytest.approx(expected, rel=1e-5, abs=1e-7)
    return answer == expected


def test_concurrent_requests_are_batched_and_answered_right(models):
    texts = [f"film number {i} was {'lovely' if i % 2 else 'dull'}" for i in range(8)]
    expected = [p.to_json() for p in models["sentiment"].run.predict(texts)]

    async def go(max_batch):
        app = create_app(models, ServeLimits(max_batch=max_batch, batch_wait_ms=100))
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                replies = await asyncio.gather(*(
                    http.post("/models/sentiment/classify", json={"texts": [t]}) for t in texts))
            return [r.json()["predictions"][0] for r in replies], app.state.workers["sentiment"]
        finally:
            app.state.close()

    answers, batched = asyncio.run(go(8))
    assert _close(answers, expected)
    assert batched.requests_run == 8 and batched.batches_run < 8
    answers, alone = asyncio.run(go(1))
    assert _close(answers, expected) and alone.batches_run == 8
    assert not _close(answers, [{**e, "label": "?"} for e in expected])  # _close can fail


def test_a_full_queue_answers_503(models):
    gate = threading.Event()
    model = models["sentiment"]
    real = model.run_batch

    def held(key, payloads):
        gate.wait(5)
        return real(key, payloads)

    model.run_batch = held
    app = create_app(models, ServeLimits(max_queue=1, batch_wait_ms=0))
    model.run_batch = real

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = asyncio.ensure_future(
                http.post("/models/sentiment/classify", json={"texts": ["one"]}))
            await asyncio.sleep(0.1)
            second = await http.post("/models/sentiment/classify", json={"texts": ["two"]})
            gate.set()
            return await first, second

    try:
        first, second = asyncio.run(go())
    finally:
        gate.set()
        app.state.close()
    assert first.status_code == 200
    assert "busy" in _one_line_error(second, 503) and second.headers["retry-after"] == "1"


BAD_REQUESTS = [
    ("/models/sentiment/classify", {"texts": "not a list"}, 422, "texts"),
    ("/models/sentiment/classify", {"texts": []}, 422, "at least 1"),
    ("/models/sentiment/classify", {"texts": ["   "]}, 422, "blank"),
    ("/models/sentiment/classify", {"texts": ["ok"], "run_dir": "/etc"}, 422, "run_dir"),
    ("/models/sentiment/classify", {"text": "ok"}, 422, "texts"),
    ("/models/sentiment/classify", {"texts": ["a"] * 33}, 422, "at most 32"),
    ("/models/sentiment/classify", {"texts": ["a" * 2001]}, 422, "at most 2000"),
    ("/models/ner/tag", {"sentences": ["EU"], "output_scheme": "xml"}, 422, "output_scheme"),
    ("/models/de-en/translate", {"texts": ["hund"], "beam": 11}, 422, "beam"),
    ("/models/de-en/translate", {"texts": ["hund"], "beam": 0}, 422, "beam"),
    ("/models/de-en/translate", {"texts": ["hund"], "n_best": 0}, 422, "n_best"),
    ("/models/chars/sample", {"length": 1001}, 422, "length"),
    ("/models/chars/sample", {"temperature": 0}, 422, "temperature"),
    ("/models/chars/sample", {"top_p": 1.5}, 422, "top_p"),
    ("/models/chars/sample", {"top_k": -1}, 422, "top_k"),
    ("/models/chars/sample", {"length": "5"}, 422, "length"),
    ("/models/chars/score", {"texts": [""]}, 422, "texts.0"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD_REQUESTS)
def test_wrong_fields_and_values_get_a_one_line_4xx(client, path, body, status, words):
    assert words in _one_line_error(client.post(path, json=body), status)


def test_malformed_and_oversized_bodies(client):
    bad = client.post("/models/sentiment/classify", content=b'{"texts": [',
                      headers={"Content-Type": "application/json"})
    assert _one_line_error(bad, 400).startswith("malformed JSON")
    not_object = client.post("/models/sentiment/classify", json=["a list"])
    _one_line_error(not_object, 422)
    big = json.dumps({"texts": ["word " * 400] * 40}).encode()
    assert "over 65536 bytes" in _one_line_error(
        client.post("/models/sentiment/classify", content=big,
                    headers={"Content-Type": "application/json"}), 413)

    def chunks():  # no Content-Length: the limit is found while reading
        for _ in range(20):
            yield b" " * 4096

    chunked = client.post("/models/sentiment/classify", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert "over 65536 bytes" in _one_line_error(chunked, 413)


def test_unknown_paths_and_methods(client):
    _one_line_error(client.post("/models/nothing/classify", json={"texts": ["a"]}), 404)
    _one_line_error(client.post("/models/sentiment/tag", json={"sentences": ["a"]}), 404)
    _one_line_error(client.get("/models/sentiment/classify"), 405)


def test_bearer_token(models):
    with _client(models, token="s3cret") as client:
        assert client.get("/health").status_code == 200  # liveness stays open
        assert client.get("/").status_code == 200  # the page asks for the token itself
        assert "token" in _one_line_error(client.get("/models"), 401)
        wrong = client.post("/models/sentiment/classify", json={"texts": ["a"]},
                            headers={"Authorization": "Bearer guess"})
        assert _one_line_error(wrong, 401) and wrong.headers["www-authenticate"] == "Bearer"
        right = client.post("/models/sentiment/classify", json={"texts": ["a"]},
                            headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert "HTTPBearer" in json.dumps(client.get("/openapi.json").json())


def test_cors_is_off_unless_asked(models, client):
    origin = {"Origin": "http://elsewhere.example"}
    assert "access-control-allow-origin" not in client.get("/health", headers=origin).headers
    with _client(models, cors_origins=["http://elsewhere.example"]) as allowed:
        reply = allowed.get("/health", headers=origin)
        assert reply.headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_page_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>rnnlab serve</title>" in page.text
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/health", "/models", "/models/sentiment/classify",
                                  "/models/ner/tag", "/models/de-en/translate",
                                  "/models/chars/sample", "/models/chars/score"}
    schema = spec["components"]["schemas"]["TranslateRequest"]["properties"]["beam"]
    assert schema["anyOf"][0]["maximum"] == ServeLimits().max_beam
