"""The served app through gradio_client, on 127.0.0.1: the `ask` API, follow-ups, the bounded queue, per-session
documents, error messages, file-route lockdown, and `python app.py` honouring --port / GRADIO_SERVER_*.

Most tests run the real UI around the fake bot in a thread of this process (fast, and the queue test can hold the
bot); the `slow` tests start `python app.py` with the real models in a subprocess.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import ROOT
from fakes import FakeBot, free_port, start_server, stop_server, wait_until_up

from qa_bot import REFUSAL, REFUSAL_MANY
from qa_bot.ui import build_app, launch

OUT = ROOT / "test-output"
Q = "When did Alibaba go public in New York?"
IPO_SENTENCE = "Alibaba went public in New York back in 2014, marking the largest IPO at the time."


@pytest.fixture(scope="module")
def app():
    """(url, bot): the UI around a FakeBot whose `gate` can hold answers; queue max_size 1."""
    bot = FakeBot(gate=threading.Event())
    bot.gate.set()
    demo = build_app(bot, queue_size=1)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}", bot
    finally:
        bot.gate.set()
        demo.close()


def client(url):
    return Client(url, verbose=False, download_files=False)


def test_ask_endpoint_returns_answer_abstained_and_citations(app):
    url, _ = app
    info = client(url).view_api(return_format="dict", print_info=False)
    assert "/ask" in info["named_endpoints"]
    r = client(url).predict(Q, api_name="/ask")
    assert r["answer"] == r["text"] == "2014 [1]" and r["abstained"] is False  # short answer, [n] marker
    c = r["citations"][0]
    assert c["n"] == 1 and c["source"] == "alibaba_cloud_spinoff.txt" and c["text"] == IPO_SENTENCE
    text = (ROOT / "docs_corpus" / c["source"]).read_text(encoding="utf-8")
    assert text[c["start"]:c["end"]] == c["text"]  # offsets index into the document
    assert {"retrieve", "generate"} <= set(r["timings"]) and json.dumps(r)
    assert "draft" not in r and "reason" in r  # unverified reader text is never exposed


def test_ask_endpoint_refusal_lists_closest_passages(app):
    r = client(app[0]).predict("What colour is the sky over Alibaba's Paris office?", api_name="/ask")
    assert r["abstained"] is True and r["text"] == REFUSAL and r["citations"] == []
    assert r["retrieved"] and r["reason"]  # about the article, not answered by it: the closest passages
    off = client(app[0]).predict("What colour is the sky over Paris?", api_name="/ask")
    assert off["abstained"] is True and off["text"] == REFUSAL and off["retrieved"] == []  # off topic: nothing listed
    out = client(app[0]).predict("What colour is the sky over Paris?", [], api_name="/chat")
    assert "qa-refusal" in str(out[1]) and "No passages were found" in str(out[2])


def test_refusal_wording_is_consistent_for_a_corpus_of_several_documents(tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"The {name[0]} ferry leaves at 9 am from pier {ord(name[0])}.", encoding="utf-8")
    bot = FakeBot(corpus_dir=tmp_path)
    assert bot.refusal == REFUSAL_MANY
    demo = build_app(bot, queue_size=2)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        out = client(f"http://127.0.0.1:{port}").predict("What colour is the ferry over Paris?", [], api_name="/chat")
    finally:
        demo.close()
    chat, sources = str(out[1]), str(out[2])
    assert REFUSAL_MANY in chat and "qa-closest" in sources
    assert REFUSAL not in chat + sources, sources


def test_follow_up_uses_history(app):
    c = client(app[0])
    first = c.predict("Tell me about Alibaba's cloud business.", api_name="/ask")
    alone = c.predict("How much revenue did it make?", api_name="/ask")
    follow = c.predict("How much revenue did it make?", [["Tell me about Alibaba's cloud business.", first["text"]]],
                       api_name="/ask")
    assert "2.7 billion" in follow["text"] and follow["standalone_question"]
    assert alone["standalone_question"] is None  # without history nothing is rewritten


def test_user_errors_are_messages_not_tracebacks(app):
    c = client(app[0])
    with pytest.raises(AppError, match="the question is empty"):
        c.predict("   ", api_name="/ask")
    with pytest.raises(AppError) as e:
        c.predict("__crash__", api_name="/ask")
    assert "secret" not in str(e.value) and "Traceback" not in str(e.value)
    out = c.predict("__crash__", [], api_name="/chat")
    assert "Something went wrong" in str(out[1]) and "secret" not in str(out)


def test_busy_message_when_queue_is_full(app):
    url, bot = app
    bot.gate.clear()  # hold the bot: the first request runs (and blocks), the second waits, the third bounces
    try:
        c = client(url)
        n = len(bot.calls)
        running = c.submit(Q, api_name="/ask")
        deadline = time.monotonic() + 20
        while len(bot.calls) == n:
            assert time.monotonic() < deadline, "first request never started"
            time.sleep(0.05)
        waiting = c.submit("Who is the chairman of Alibaba Group?", api_name="/ask")
        while waiting.status().code.name != "IN_QUEUE":
            assert time.monotonic() < deadline, waiting.status()
            time.sleep(0.05)
        assert len(bot.calls) == n + 1  # concurrency_limit=1: the second is not running alongside the first
        with pytest.raises(Exception, match="(?i)queue is full.*try again"):
            client(url).submit("How many companies?", api_name="/ask").result(timeout=20)
    finally:
        bot.gate.set()
    assert "2014" in running.result(timeout=20)["text"]
    assert "Daniel Zhang" in waiting.result(timeout=20)["text"]


def test_session_documents_stay_in_their_session(app, tmp_path):
    url, _ = app
    doc = tmp_path / "zorblax.md"
    doc.write_text("The zorblax budget is 42 gold coins.", encoding="utf-8")
    a, b = client(url), client(url)
    note = a.predict(handle_file(str(doc)), api_name="/add_document")
    assert "Added" in note and "zorblax.md" in note
    out_a = a.predict("What is the zorblax budget?", [], api_name="/chat")
    assert "42 gold" in str(out_a[1]) and "zorblax.md" in out_a[2]
    out_b = b.predict("What is the zorblax budget?", [], api_name="/chat")  # another session
    assert "42 gold" not in str(out_b) and "qa-refusal" in str(out_b[1])
    assert client(url).predict("What is the zorblax budget?", api_name="/ask")["abstained"] is True


def test_upload_limits_and_non_text(app, tmp_path):
    c = client(app[0])
    big = tmp_path / "big.txt"
    big.write_text("x" * 30_000)  # FakeBot's limit is 20,000 bytes
    assert "too large" in c.predict(handle_file(str(big)), api_name="/add_document")
    blob = tmp_path / "blob.txt"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert "qa-error" in c.predict(handle_file(str(blob)), api_name="/add_document")


@pytest.mark.parametrize("target", [
    "/etc/passwd", str(ROOT / "app.py"), "app.py", "qa_bot/settings.py", "docs_corpus/alibaba_cloud_spinoff.txt",
    str(ROOT / "docs_corpus" / "alibaba_cloud_spinoff.txt"), "../../../../../etc/passwd", "%2Fetc%2Fpasswd",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd", str(Path.home() / ".bashrc"),
])
def test_file_routes_serve_nothing_outside_gradio_cache(app, target):
    r = httpx.get(f"{app[0]}/gradio_api/file={target}", timeout=10)
    assert r.status_code in (403, 404), (r.status_code, r.text[:200])
    assert "root:" not in r.text and "import" not in r.text


def test_offline_config(app):
    url, _ = app
    cfg = httpx.get(f"{url}/config", timeout=10).json()
    assert cfg["analytics_enabled"] is False
    page = httpx.get(url, timeout=10).text + httpx.get(f"{url}/theme.css", timeout=10).text
    assert "fonts.googleapis" not in page and "cdn.jsdelivr" not in page


def test_app_py_serves_on_env_host_and_port():
    """`python app.py` takes GRADIO_SERVER_NAME/PORT; --port wins over the env. Nothing heavy loads at start."""
    env_port, flag_port = free_port(), free_port()
    proc, url = start_server(["app.py", "--no-warmup"], env_port, OUT / "app_env.log",
                             env={"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(env_port)})
    try:
        wait_until_up(url, proc, timeout=120)
    finally:
        stop_server(proc)
    proc, url = start_server(["app.py", "--no-warmup", "--port", str(flag_port)], flag_port, OUT / "app_flag.log",
                             env={"GRADIO_SERVER_PORT": str(env_port)})
    try:
        wait_until_up(url, proc, timeout=120)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{env_port}/config", timeout=2)
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def real_app():
    pytest.importorskip("qa_bot.pipeline", reason="the real library is not there yet")
    port = free_port()
    proc, url = start_server(["app.py", "--port", str(port)], port, OUT / "app_real.log")
    try:
        wait_until_up(url, proc, timeout=300)
        yield url
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_real_app_ask_and_follow_up(real_app):
    c = Client(real_app, verbose=False)
    r = c.predict(Q, api_name="/ask")
    assert "2014" in r["answer"] and not r["abstained"] and r["citations"]
    assert all(c_["source"] and c_["text"] for c_ in r["citations"])
    assert r["citations"][0]["text"] == IPO_SENTENCE  # the exact supporting sentence
    cloud = c.predict("What is Alibaba doing with its cloud unit?", api_name="/ask")
    follow = c.predict("How much revenue did it make?", [["What is Alibaba doing with its cloud unit?",
                                                          cloud["text"]]], api_name="/ask")
    assert "2.7 billion" in follow["text"], follow
    assert follow["standalone_question"] and follow["citations"]


@pytest.mark.slow
def test_real_app_refuses_outside_the_article(real_app):
    c = Client(real_app, verbose=False)
    r = c.predict("What is the capital of Australia?", api_name="/ask")
    # Off topic (below min_similarity): refused before the reader, with no unrelated passages listed.
    assert r["abstained"] is True and r["text"] == REFUSAL and r["citations"] == [] and r["retrieved"] == []
    assert r["reason"] and "read" not in r["timings"]
    r = c.predict("What was Alibaba's net profit in the quarter?", api_name="/ask")
    # About the article but not in it: refused after reading, listing the closest passages.
    assert r["abstained"] is True and r["text"] == REFUSAL and r["citations"] == [] and r["retrieved"]
