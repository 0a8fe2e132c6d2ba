"""The web page in a real headless Chromium (Debian's, driven by Playwright) against
`rnnlab serve` started as a user starts it, on a free local port: each panel's main flow, one
error shown to the user, keyboard use and a phone-width screen."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

import rnnlab

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags from this machine kind's notes: no sandbox as root, and no background connections
# (the closed network refuses them, many at a time).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]

if not Path(CHROMIUM).exists():
    if os.environ.get("RNNLAB_REQUIRE_BROWSER"):
        raise RuntimeError(f"the browser tests need Chromium at {CHROMIUM}: apt-get install "
                           "chromium (.ci/run does)")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(run_dirs, log_dir, *extra):
    """`rnnlab serve RUN_DIR...` in its own process on a free port, as a user starts it."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(rnnlab.__file__).parents[1])}
    env.pop("RNNLAB_SERVE_TOKEN", None)
    log = (log_dir / "server.log").open("w")
    command = [sys.executable, "-m", "rnnlab.cli.main", "serve", *map(str, run_dirs),
               "--port", str(port), "--threads", "1", "--device", "cpu",
               "--log-level", "warning", *extra]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"rnnlab serve exited: {Path(log.name).read_text()}")
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("rnnlab serve did not answer within a minute")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    """The four tiny runs behind one server; stopped after the module."""
    names = ("sentiment", "ner", "de-en", "chars")
    with serving([runs[n] for n in names], tmp_path_factory.mktemp("serve-log")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(server + "/")
    page.wait_for_selector("#panel-chars")
    yield page
    context.close()


def _api(server: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(server + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_one_panel_per_model_and_every_input_labelled(page):
    panels = page.locator("section.panel")
    assert panels.count() == 4
    assert [panels.nth(i).get_attribute("data-task") for i in range(4)] == [
        "classify", "tag", "translate", "lm"]
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input')].filter(i => !i.labels.length).length")
    assert unlabelled == 0
    assert page.locator("#status").inner_text() == "4 models loaded"


def test_classify_by_keyboard_shows_words_shaded_by_attention(page, server):
    panel = page.locator("#panel-sentiment")
    text = panel.get_by_label("Text to classify")
    text.fill("a gripping , funny film")
    text.press("Enter")  # Enter submits
    panel.locator(".label").wait_for()
    expected = _api(server, "/models/sentiment/classify",
                    {"texts": ["a gripping , funny film"]})["predictions"][0]
    assert panel.locator(".label").inner_text() == expected["label"]
    words = panel.locator(".attention .word")
    assert words.count() == len(expected["tokens"])
    assert [words.nth(i).inner_text() for i in range(words.count())] == expected["tokens"]
    shades = [words.nth(i).evaluate("w => getComputedStyle(w).backgroundColor")
              for i in range(words.count())]
    assert all(s.startswith("rgba(11, 95, 204") for s in shades)
    heaviest = max(range(len(expected["attention"])), key=expected["attention"].__getitem__)
    assert shades[heaviest].endswith(", 0.88)")  # the heaviest word is the darkest


def test_classify_error_is_shown(page):
    panel = page.locator("#panel-sentiment")
    panel.get_by_label("Text to classify").fill("   ")
    panel.get_by_role("button", name="Classify").click()
    alert = panel.get_by_role("alert")
    alert.wait_for(state="visible")
    assert "blank" in alert.inner_text()


def test_tag_colours_entities(page, server):
    sentence = "Peter Blackburn of the EU rejects German call in BRUSSELS"
    expected = _api(server, "/models/ner/tag", {"sentences": [sentence]})["sentences"][0]
    assert expected["entities"], "the tiny tagger should find at least one entity here"
    panel = page.locator("#panel-ner")
    panel.get_by_label("Sentence (words separated by spaces)").fill(sentence)
    panel.get_by_label("Sentence (words separated by spaces)").press("Enter")
    panel.locator(".tagged").wait_for()
    marks = panel.locator("mark.entity")
    assert marks.count() == len(expected["entities"])
    for i, entity in enumerate(expected["entities"]):
        mark = marks.nth(i)
        assert mark.get_attribute("data-type") == entity["type"]
        assert mark.inner_text().startswith(entity["text"])
        colour = mark.evaluate("m => getComputedStyle(m).backgroundColor")
        assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 0)")  # ours, not mark's yellow


def test_translate_draws_the_alignment_heatmap_and_shows_an_error(page, server):
    panel = page.locator("#panel-de-en")
    panel.get_by_label("Sentence to translate").fill("ein hund läuft")
    panel.get_by_label("Beam").fill("2")
    panel.get_by_label("Beam").press("Enter")
    panel.locator(".translation").wait_for()
    expected = _api(server, "/models/de-en/translate",
                    {"texts": ["ein hund läuft"], "beam": 2})["translations"][0]
    assert panel.locator(".translation").inner_text() == expected["translation"]
    rows = panel.locator("table.heatmap tbody tr")
    assert rows.count() == len(expected["target_tokens"])
    assert rows.first.locator("td").count() == len(expected["source_tokens"])
    # beyond the server's --max-beam (10): the server refuses, the page says why
    panel.get_by_label("Beam").fill("11")
    panel.get_by_role("button", name="Translate").click()
    alert = panel.get_by_role("alert")
    alert.wait_for(state="visible")
    assert "beam" in alert.inner_text() and "10" in alert.inner_text()


def test_lm_streams_a_sample_and_scores(page, server):
    panel = page.locator("#panel-chars")
    panel.get_by_label("Prime (text to start from)").fill("line")
    panel.get_by_label("Length").fill("60")
    panel.get_by_label("Temperature").fill("0.5")
    panel.get_by_label("Top-k (0: off)").fill("5")
    panel.get_by_label("Top-p").fill("0.9")
    panel.get_by_label("Seed (optional)").fill("7")
    panel.get_by_role("button", name="Generate").click()
    info = panel.locator(".stream-info")
    page.wait_for_function("document.querySelector('#panel-chars .stream-info').textContent"
                           ".includes('tokens in')")
    assert info.inner_text().startswith("60 tokens in")
    sample = panel.locator(".sample")
    # one text node per streamed token, in the order the server sent them
    assert sample.evaluate("s => s.childNodes.length") == 60
    body = {"prime": "line", "length": 60, "temperature": 0.5, "top_k": 5, "top_p": 0.9,
            "seed": 7}
    request = urllib.request.Request(server + "/models/chars/sample",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        events = response.read().decode()
    tokens = [json.loads(line[6:])["text"] for line in events.splitlines()
              if line.startswith("data: ") and '"text"' in line]
    assert sample.evaluate("s => s.textContent") == "".join(tokens)
    panel.get_by_label("Text to score").fill("line 5")
    panel.get_by_label("Text to score").press("Enter")
    page.wait_for_function("document.querySelector('#panel-chars .score-result')"
                           ".textContent.includes('perplexity')")


def test_lm_error_is_shown(page):
    panel = page.locator("#panel-chars")
    panel.get_by_label("Length").fill("5000")  # beyond --max-sample-length
    panel.get_by_role("button", name="Generate").click()
    alert = panel.get_by_role("alert").first
    alert.wait_for(state="visible")
    assert "length" in alert.inner_text()


def test_readable_at_phone_width(browser, server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(server + "/")
        page.wait_for_selector("#panel-de-en")
        panel = page.locator("#panel-de-en")
        panel.get_by_label("Sentence to translate").fill("zwei hunde laufen und der mann isst")
        panel.get_by_label("Sentence to translate").press("Enter")
        panel.locator("table.heatmap").wait_for()
        # nothing pushes the page wider than the screen (the heatmap scrolls in its own box)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        box = panel.get_by_role("button", name="Translate").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360
        lm = page.locator("#panel-chars")
        lm.get_by_label("Length").fill("150")
        lm.get_by_role("button", name="Generate").click()
        page.wait_for_function("document.querySelector('#panel-chars .stream-info')"
                               ".textContent.includes('tokens in')")
        # a long line of generated text wraps inside its box
        assert lm.locator(".generated").evaluate("g => g.scrollWidth <= g.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        context.close()


def test_a_token_server_asks_for_the_token_then_shows_the_panels(browser, runs, tmp_path):
    with serving([runs["sentiment"]], tmp_path, "--token", "s3cret") as url:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            page.goto(url + "/")
            page.wait_for_function("document.querySelector('#status').textContent"
                                   ".includes('token')")
            assert page.locator("section.panel").count() == 0
            token = page.get_by_label("Access token (if the server asks for one)")
            assert page.evaluate("document.activeElement.id") == "token"  # focus moved there
            token.fill("s3cret")
            token.press("Enter")
            page.wait_for_selector("#panel-sentiment")
            text = page.get_by_label("Text to classify")
            text.press("Enter")  # the token goes with every request
            page.locator("#panel-sentiment .label").wait_for()
        finally:
            context.close()


def test_transformer_and_han_classifiers_shade_words_and_sentences(browser, attention_runs,
                                                                    tmp_path):
    """Structured pooling's word weights and a HAN's sentence and word weights are drawn."""
    with serving([attention_runs["gpt-cls"], attention_runs["han-cls"]], tmp_path) as url:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(url + "/")
        text = "A gripping, funny film. It is lovely!"
        for name in ("gpt-cls", "han-cls"):
            panel = page.locator(f"#panel-{name}")
            panel.wait_for()
            panel.get_by_label("Text to classify").fill(text)
            panel.get_by_role("button", name="Classify").click()
            panel.locator(".label").wait_for()
        expected = _api(url, "/models/gpt-cls/classify", {"texts": [text]})["predictions"][0]
        words = page.locator("#panel-gpt-cls .attention .word")
        assert [words.nth(i).inner_text() for i in range(words.count())] == expected["tokens"]
        expected = _api(url, "/models/han-cls/classify", {"texts": [text]})["predictions"][0]
        lines = page.locator("#panel-han-cls .attention .sentence")
        assert lines.count() == len(expected["sentences"]) == 2
        for i, sentence in enumerate(expected["sentences"]):
            words = lines.nth(i).locator(".word")
            assert words.count() == 1 + len(sentence)  # the sentence's weight, then its words
            assert [words.nth(j + 1).inner_text() for j in range(len(sentence))] == sentence
        context.close()
