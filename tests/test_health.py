"""Issue 46, health checks for a deployment (qa_bot/health.py): GET /healthz answers while the process serves,
GET /readyz is 503 with ready=false until the index is loaded and the reader warm, then 200 with the corpus size
and the index version; both need no API key and load nothing. Served by the real app (Gradio, Starlette) around
a real QABot with the hashing embedder and a scripted reader; tests/test_watch.py checks the same with the real
models behind `app.py`."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

from fakes import free_port, scripted_bot
from qa_bot.ui import build_app, launch

KEY = "k" * 32


@contextmanager
def served(bot, **build):
    demo = build_app(bot, **build)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


def _get(url: str, method: str = "GET") -> tuple[int, dict, object]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            return r.status, json.loads(body) if body else {}, r.headers
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, json.loads(body) if body else {}, e.headers


def test_readyz_is_503_until_the_index_is_loaded_and_the_reader_warm_then_200(corpus, tmp_path):
    bot = scripted_bot(corpus, tmp_path / "cache")
    with served(bot, api_keys=(KEY,)) as url:
        status, body, headers = _get(url + "/healthz")
        assert (status, body) == (200, {"status": "ok"}) and headers["Cache-Control"] == "no-store"
        t = time.perf_counter()
        status, body, _ = _get(url + "/readyz")
        assert time.perf_counter() - t < 1.0  # cheap: nothing is loaded by asking
        assert status == 503 and body["ready"] is False
        # the page named the documents (so their count is known), but the probe loaded no index and no model
        assert body["index_loaded"] is False and body["reader_warm"] is False and body["documents"] == 1
        assert bot.corpus.loaded("index") is None and body["chunks"] is None and body["index_version"] is None
        _ = bot.index  # the index alone is not enough
        status, body, _ = _get(url + "/readyz")
        assert status == 503 and body["index_loaded"] is True and body["reader_warm"] is False
        bot.warm_up()
        status, body, _ = _get(url + "/readyz")
        assert status == 200 and body["ready"] is True and body["reader_warm"] is True
        assert body["documents"] == 1 and body["chunks"] == len(bot.index.chunks) > 1
        assert body["index_version"] == bot.index.info["corpus_sha256"][:16] and body["corpus_version"] == 0
        assert body["corpus_changed"] is None  # not followed (no --watch)
        assert _get(url + "/readyz", "HEAD")[0] == 200 and _get(url + "/healthz", "HEAD")[0] == 200
        # no key needed for either, while the API behind the same server still asks for one
        assert _get(url + "/v1/models")[0] == 401


def test_a_question_without_warm_up_makes_the_app_ready(corpus, tmp_path):
    from fakes import read

    bot = scripted_bot(corpus, tmp_path / "cache", script={"public": read("2014", 1)})
    with served(bot, api_keys=()) as url:
        assert _get(url + "/readyz")[0] == 503
        assert "2014" in bot.ask("When did Alibaba go public in New York?").text
        status, body, _ = _get(url + "/readyz")
        assert status == 200 and body["ready"] is True
