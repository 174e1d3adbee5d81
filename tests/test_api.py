"""The OpenAI-compatible API (/v1) served beside the chat, on 127.0.0.1 only.

Fast tests run the real app (Gradio + the API routes) in a thread of this process around the FakeBot, whose
`gate` can hold answers to fill the queue; they check every error case (status and OpenAI-shaped body), API
keys, body limits, 429 with Retry-After, and 20 concurrent clients. One test starts `python tests/fakes.py`
in a subprocess to check QA_BOT_API_KEYS from the environment and that no key reaches the server log.
The `slow` tests serve the real bot (MiniLM + the default reader through llama.cpp) and talk to it with the official
`openai` client and LangChain's ChatOpenAI, unchanged.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from gradio_client import Client

from conftest import ARTICLE, ROOT, TEST_LLM_TIMEOUT
from fakes import FakeBot, free_port, start_server, stop_server, wait_until_up

from qa_bot import REFUSAL, QABotError
from qa_bot.api import MAX_BODY_BYTES, exposure_warning, load_api_keys
from qa_bot.ui import build_app, launch

OUT = ROOT / "test-output"
ARTICLE_TEXT = ARTICLE.read_text(encoding="utf-8")
Q = "When did Alibaba go public in New York?"
KEY1, KEY2 = "qa-test-key-0123456789abcdef", "qa-other-key-fedcba9876543210"


@dataclass
class RecordingBot(FakeBot):
    """The FakeBot, also recording the history each question came with."""

    histories: list = field(default_factory=list)
    filters: list = field(default_factory=list)

    def ask_stream(self, question, *, history=(), session=None, **filters):  # filters: issue 11's source/since/until
        self.histories.append([tuple(turn) for turn in history])
        self.filters.append({k: v for k, v in filters.items() if v is not None})
        return super().ask_stream(question, history=history, session=session, **filters)


def serve(bot, **kw):
    demo = build_app(bot, **kw)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def app():
    """(url, bot, api): the app around a FakeBot (answers stream word by word), open API, queue bound 8."""
    bot = RecordingBot(gate=threading.Event(), delay=0.002)
    bot.gate.set()
    demo, url = serve(bot, queue_size=8, api_keys=())
    try:
        yield url, bot, demo.qa_api
    finally:
        bot.gate.set()
        demo.close()


def chat(url, content=Q, *, history=(), stream=False, headers=None, timeout=20, **extra):
    messages = [{"role": "system", "content": "You answer questions about the article."}]
    for q, a in history:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": content})
    body = {"model": "qa-bot", "messages": messages, "stream": stream, **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=timeout)


def sse_events(text: str) -> list:
    """The `data:` payloads of an SSE body, JSON-decoded except the final [DONE]."""
    out = []
    for block in text.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            data = block[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def assert_openai_error(r, status, *, param=..., code=...):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and len(err["message"]) > 10 and isinstance(err["type"], str)
    assert "Traceback" not in r.text and "secret" not in r.text and "10.0.0.9" not in r.text
    if param is not ...:
        assert err["param"] == param, err
    if code is not ...:
        assert err["code"] == code, err
    return err


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- answers ------------------------------------------------------------------------------------------------


def test_models_list_the_corpus_as_qa_bot(app):
    url, _, _ = app
    r = httpx.get(f"{url}/v1/models", timeout=10)
    assert r.status_code == 200 and r.json()["object"] == "list"
    assert [m["id"] for m in r.json()["data"]] == ["qa-bot"] and r.json()["data"][0]["object"] == "model"
    assert httpx.get(f"{url}/v1/models/qa-bot", timeout=10).json()["id"] == "qa-bot"
    assert_openai_error(httpx.get(f"{url}/v1/models/gpt-4o", timeout=10), 404, code="model_not_found")


def test_completion_has_answer_citations_and_abstained(app):
    url, bot, _ = app
    r = chat(url, temperature=0.7, max_tokens=5, top_p=0.1, user="someone", frobnicate={"x": 1})  # ignored fields
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "qa-bot" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert "2014" in choice["message"]["content"] and "[1]" in choice["message"]["content"]
    assert body["abstained"] is False and len(body["citations"]) == 1
    c = body["citations"][0]
    assert set(c) == {"n", "source", "title", "date", "page", "start", "end", "text"} and c["n"] == 1
    assert c["source"] == "alibaba_cloud_spinoff.txt" and ARTICLE_TEXT[c["start"]:c["end"]] == c["text"]
    assert "draft" not in r.text and "retrieved" not in body
    assert bot.calls[-1] == Q  # the last user message is the question (the system message is not)


def test_streaming_sends_chunks_then_citations_then_done(app):
    url, _, _ = app
    r = chat(url, stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "qa-bot" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert "2014" in text and len(chunks) >= 5  # word by word, not one blob
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"] == {}
    assert last["abstained"] is False and last["text"] == text
    assert [c["n"] for c in last["citations"]] == [1]
    assert ARTICLE_TEXT[last["citations"][0]["start"]:last["citations"][0]["end"]] == last["citations"][0]["text"]
    assert all("citations" not in c for c in chunks[:-1])


def test_refusal_is_abstained_with_no_citations(app):
    url, _, _ = app
    for stream in (False, True):
        r = chat(url, "What colour is the sky over Paris?", stream=stream)
        assert r.status_code == 200
        final = r.json() if not stream else sse_events(r.text)[-2]
        assert final["abstained"] is True and final["citations"] == []
        if not stream:
            assert final["choices"][0]["message"]["content"] == REFUSAL


def test_follow_up_uses_earlier_turns_as_history(app):
    url, bot, _ = app
    q1, q2 = "Tell me about Alibaba's cloud business.", "Who is the chairman of Alibaba Group?"
    first = chat(url, q1).json()["choices"][0]["message"]["content"]
    assert bot.histories[-1] == []
    follow = chat(url, "How much revenue did it make?", history=[(q2, "Daniel Zhang. [1]"), (q1, first)])
    assert "2.7 billion" in follow.json()["choices"][0]["message"]["content"]
    assert bot.histories[-1] == [(q2, "Daniel Zhang. [1]"), (q1, first)]  # oldest first; no system message
    # content as a list of text parts, as some clients send it; a trailing assistant turn is not history
    r = httpx.post(f"{url}/v1/chat/completions", timeout=10, json={"model": "qa-bot", "stream": True, "messages": [
        {"role": "user", "content": [{"type": "text", "text": q1}]},
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
        {"role": "user", "content": [{"type": "text", "text": "How much revenue did it make?"}]},
        {"role": "assistant", "content": "(prefill)"}]})
    assert "2.7 billion" in r.text and bot.calls[-1] == "How much revenue did it make?"
    assert bot.histories[-1] == [(q1, first)]


def test_filter_fields_reach_the_bot(app):
    url, bot, _ = app
    for stream in (False, True):
        r = chat(url, stream=stream, source="alibaba_cloud_spinoff.txt", since=None, until="")
        assert r.status_code == 200, r.text
        final = r.json() if not stream else sse_events(r.text)[-2]
        assert final["citations"][0]["source"] == "alibaba_cloud_spinoff.txt"
        assert bot.filters[-1] == {"source": "alibaba_cloud_spinoff.txt"}  # null and "" are no filter
    chat(url)
    assert bot.filters[-1] == {}


def test_openai_client_sends_a_filter_with_extra_body(app):
    import openai

    client = openai_client(app[0])
    r = client.chat.completions.create(model="qa-bot", messages=[{"role": "user", "content": Q}],
                                       extra_body={"source": "alibaba_cloud_spinoff.txt"})
    assert "2014" in r.choices[0].message.content and app[1].filters[-1] == {"source": "alibaba_cloud_spinoff.txt"}
    with pytest.raises(openai.BadRequestError, match="no document matches --source nope"):
        client.chat.completions.create(model="qa-bot", messages=[{"role": "user", "content": Q}],
                                       extra_body={"source": "nope"})


@pytest.mark.parametrize("fields,param,message", [
    ({"since": "last year"}, "since", "--since 'last year' is not a date: use YYYY-MM-DD"),
    ({"since": "2023-01-01", "until": "13/13/2023"}, "until", "--until '13/13/2023' is not a date"),
    ({"since": "2024-01-01", "until": "2023-01-01"}, "since", "--since 2024-01-01 is after --until 2023-01-01"),
    ({"source": 42}, "source", "'source' must be a string or null."),
    ({"until": ["2023-01-01"]}, "until", "'until' must be a string or null."),
    ({"source": "nope"}, None, "no document matches --source nope"),
    ({"since": "2020-01-01"}, None, "no document matches --since 2020-01-01"),  # the fake corpus has no dates
])
def test_a_bad_filter_is_a_400_with_the_library_message(app, fields, param, message):
    url, bot, api = app
    for stream in (False, True):
        err = assert_openai_error(chat(url, stream=stream, **fields), 400, param=param, code="invalid_filter")
        assert message in err["message"] and "\n" not in err["message"]
    assert api.slots.used == 0


# --- errors ---------------------------------------------------------------------------------------------------

LONG = "x" * 2001


@pytest.mark.parametrize("body,status,param", [
    (b"{not json", 400, None),
    (b"", 400, None),
    (b"\xff\xfe\x00garbage", 400, None),
    (b"[" * 100_000 + b"]" * 100_000, 400, None),  # deeply nested: no RecursionError traceback
    (b'"just a string"', 400, None),
    (b'{"model": "qa-bot"}', 400, "messages"),
    (b'{"model": "qa-bot", "messages": []}', 400, "messages"),
    (b'{"model": "qa-bot", "messages": "hello"}', 400, "messages"),
    (b'{"model": "qa-bot", "messages": [{"role": "system", "content": "Be brief."}]}', 400, "messages"),
    (b'{"model": "qa-bot", "messages": [{"role": "assistant", "content": "Hi."}]}', 400, "messages"),
    (b'{"model": "qa-bot", "messages": [{"role": "user", "content": "   "}]}', 400, "messages"),
    (json.dumps({"model": "qa-bot", "messages": [{"role": "user", "content": LONG}]}).encode(), 400, "messages"),
    (b'{"model": "qa-bot", "messages": [{"role": "wizard", "content": "hi"}]}', 400, "messages[0].role"),
    (b'{"model": "qa-bot", "messages": ["hi"]}', 400, "messages[0]"),
    (b'{"model": "qa-bot", "messages": [{"role": "user", "content": 42}]}', 400, "messages[0].content"),
    (b'{"model": "qa-bot", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": '
     b'{"url": "http://x/y.png"}}]}]}', 400, "messages[0].content"),
    (b'{"model": "qa-bot", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}', 400, "stream"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}', 404, "model"),
])
def test_bad_requests_get_openai_shaped_errors(app, body, status, param):
    url, bot, api = app
    n = len(bot.calls)
    r = httpx.post(f"{url}/v1/chat/completions", content=body, headers={"Content-Type": "application/json"},
                   timeout=10)
    assert_openai_error(r, status, param=param)
    assert len(bot.calls) == n  # rejected before the bot is asked
    assert api.slots.used == 0


def test_unexpected_failure_is_a_500_without_details(app):
    url, _, api = app
    for stream in (False, True):
        assert_openai_error(chat(url, "__crash__", stream=stream), 500, code=None)
    assert api.slots.used == 0


def test_llm_backend_down_is_a_503(app):
    url, _, api = app
    for stream in (False, True):
        err = assert_openai_error(chat(url, "__backend_down__", stream=stream), 503, code="backend_unavailable")
        assert err["type"] == "server_error"
    assert api.slots.used == 0


def test_backend_dying_mid_stream_ends_with_an_error_event(app):
    url, _, _ = app
    r = chat(url, "__dies_midway__", stream=True)
    assert r.status_code == 200  # the headers went out with the first piece
    events = sse_events(r.text)
    assert events[-1] == "[DONE]" and "error" in events[-2]
    assert events[-2]["error"]["code"] == "backend_unavailable" and "10.0.0.9" not in r.text
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-2]) == "Alibaba went public "


def test_real_pipeline_with_unreachable_llm_is_a_503(tmp_path):
    """A real QABot (hashing embedder, no model load) whose OpenAI-compatible LLM server is not there."""
    from qa_bot import QABot, Settings
    from qa_bot.testing import HashEmbedder

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here once the socket closes
    settings = Settings.from_env({}, corpus_dir=ROOT / "docs_corpus", cache_dir=tmp_path, llm_backend="openai",
                                 llm_base_url=f"http://127.0.0.1:{dead}/v1", llm_timeout=5, llm_max_retries=0)
    bot = QABot(settings=settings, embedder=HashEmbedder())
    demo, url = serve(bot, api_keys=())
    try:
        for stream in (False, True):
            err = assert_openai_error(chat(url, stream=stream), 503, code="backend_unavailable")
            assert str(dead) not in err["message"]
        assert_openai_error(chat(url, "x" * 2001), 400, param="messages")
        r = chat(url, "\u200b\u200b")  # empty once cleaned: refused by the API's check (question.normalise)
        assert_openai_error(r, 400, param="messages")
        assert "empty" in r.json()["error"]["message"]
    finally:
        demo.close()
        bot.close()


def test_wrong_method_and_unknown_path(app):
    url, _, _ = app
    r = httpx.get(f"{url}/v1/chat/completions", timeout=10)
    assert_openai_error(r, 405)
    assert r.headers["allow"] == "POST"
    assert_openai_error(httpx.post(f"{url}/v1/completions", json={}, timeout=10), 404, code="not_found")
    assert httpx.get(f"{url}/config", timeout=10).status_code == 200  # Gradio's own routes are untouched


def test_oversized_bodies_are_413(app):
    url, bot, api = app
    n = len(bot.calls)
    big = json.dumps({"model": "qa-bot", "messages": [{"role": "user", "content": "y" * MAX_BODY_BYTES}]}).encode()
    as_json = {"Content-Type": "application/json"}
    r = httpx.post(f"{url}/v1/chat/completions", content=big, headers=as_json, timeout=10)  # Content-Length: too big
    assert_openai_error(r, 413, code="request_too_large")

    def chunks():  # no Content-Length: caught while reading
        for _ in range(40):
            yield b" " * 10_000
    r = httpx.post(f"{url}/v1/chat/completions", content=chunks(), headers=as_json, timeout=10)
    assert "content-length" not in r.request.headers
    assert_openai_error(r, 413, code="request_too_large")
    assert len(bot.calls) == n and api.slots.used == 0
    # just under the limit is fine: a long system message, a short question
    filler = "z" * (MAX_BODY_BYTES - 300)
    ok = httpx.post(f"{url}/v1/chat/completions", timeout=10, json={"model": "qa-bot", "messages": [
        {"role": "system", "content": filler}, {"role": "user", "content": Q}]})
    assert ok.status_code == 200 and len(ok.request.content) <= MAX_BODY_BYTES
    assert "2014" in ok.json()["choices"][0]["message"]["content"]


# --- the bounded queue ----------------------------------------------------------------------------------------


def test_full_queue_is_429_with_retry_after(app):
    url, bot, api = app
    assert api.slots.size == 9  # the chat's bound: one answering + queue_size (8) waiting
    results: list = []
    bot.gate.clear()  # hold the bot: the first request answers (blocked), the next 8 wait
    try:
        n = len(bot.calls)
        threads = [threading.Thread(target=lambda i=i: results.append(chat(url, stream=i % 2 == 0, timeout=30)))
                   for i in range(api.slots.size)]
        for t in threads:
            t.start()
        wait_for(lambda: api.slots.used == api.slots.size and len(bot.calls) > n, what="the queue to fill")
        assert len(bot.calls) == n + 1  # one at a time: the others wait for it, not inside the bot
        for stream in (False, True):
            r = chat(url, stream=stream)
            err = assert_openai_error(r, 429, code="rate_limit_exceeded")
            assert err["type"] == "rate_limit_error"
            assert 1 <= int(r.headers["retry-after"]) <= 60
    finally:
        bot.gate.set()
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert len(results) == api.slots.size and all(r.status_code == 200 for r in results), \
        [r.status_code for r in results]
    assert all("2014" in r.text for r in results)
    wait_for(lambda: api.slots.used == 0, what="slots to be released")


def test_twenty_concurrent_clients_all_answered_or_429(app):
    url, bot, api = app
    clients, per_client = 20, 3
    counts: dict = {}
    lock = threading.Lock()

    def run(i):
        with httpx.Client(timeout=30) as c:
            for j in range(per_client):
                body = {"model": "qa-bot", "stream": (i + j) % 2 == 0,
                        "messages": [{"role": "user", "content": Q}]}
                try:
                    r = c.post(f"{url}/v1/chat/completions", json=body)
                    if r.status_code == 200:
                        ok = "2014" in r.text and (body["stream"] is False or r.text.rstrip().endswith("[DONE]"))
                        key = "answered" if ok else "bad answer"
                    elif r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded" \
                            and int(r.headers["retry-after"]) >= 1:
                        key = "429"
                    else:
                        key = f"status {r.status_code}"
                except Exception as e:  # a lost request
                    key = f"lost: {type(e).__name__}"
                with lock:
                    counts[key] = counts.get(key, 0) + 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, 60 - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    print(f"\n{clients} clients x {per_client} requests in {elapsed:.2f} s: {counts}")
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert sum(counts.values()) == clients * per_client, counts
    assert set(counts) <= {"answered", "429"}, counts
    assert counts.get("answered", 0) >= api.slots.size  # at least the first wave of each was served
    wait_for(lambda: api.slots.used == 0, what="slots to be released")
    assert "2014" in chat(url).text  # still answering afterwards


def test_client_disconnecting_mid_stream_frees_its_slot(app):
    url, bot, api = app
    bot.delay = 0.25  # ~17 words: the whole answer would take over 4 s
    try:
        with httpx.Client(timeout=10) as c:
            with c.stream("POST", f"{url}/v1/chat/completions", json={
                    "model": "qa-bot", "stream": True, "messages": [{"role": "user", "content": Q}]}) as r:
                lines = r.iter_lines()
                assert next(lines).startswith("data: ") and next(lines) == ""
                t0 = time.monotonic()
            # leaving the blocks closes the connection with most of the answer unsent
        wait_for(lambda: api.slots.used == 0, timeout=10, what="the abandoned stream's slot")
        freed = time.monotonic() - t0
    finally:
        bot.delay = 0.002
    assert freed < 2.0, f"the worker ran on for {freed:.1f} s after the client left"
    assert chat(url).status_code == 200


# --- API keys -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed():
    bot = FakeBot()
    demo, url = serve(bot, api_keys=[KEY1, KEY2])
    try:
        yield url
    finally:
        demo.close()


@pytest.mark.parametrize("auth", [None, "Bearer", f"Bearer {KEY1}x", f"Bearer {KEY1[:-1]}",
                                  f"Basic {KEY1}", KEY1, "Bearer wrong-key-wrong-key-wrong"])
def test_api_keys_missing_or_wrong_is_401(keyed, auth):
    headers = {"Authorization": auth} if auth is not None else {}
    for r in (chat(keyed, headers=headers), httpx.get(f"{keyed}/v1/models", headers=headers, timeout=10),
              httpx.post(f"{keyed}/v1/chat/completions", content=b"{bad json", headers=headers, timeout=10)):
        assert_openai_error(r, 401, code="invalid_api_key")
        assert r.headers["www-authenticate"] == "Bearer"
        assert KEY1 not in r.text and KEY2 not in r.text


def test_api_keys_right_key_is_200(keyed):
    for key in (KEY1, KEY2):
        r = chat(keyed, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and "2014" in r.text
        assert httpx.get(f"{keyed}/v1/models", headers={"Authorization": f"bearer {key}"}, timeout=10).status_code == 200
    assert httpx.get(f"{keyed}/config", timeout=10).status_code == 200  # the chat itself is not behind the keys


def test_load_api_keys(tmp_path):
    assert load_api_keys(env={}) == () and load_api_keys("  ") == ()
    assert load_api_keys(f" {KEY1} , {KEY2},,") == (KEY1, KEY2)
    assert load_api_keys(env={"QA_BOT_API_KEYS": KEY2}) == (KEY2,)
    f = tmp_path / "keys.txt"
    f.write_text(f"# team keys\n{KEY1}\n\n  {KEY2}  \n{KEY1}\n", encoding="utf-8")
    assert load_api_keys(str(f)) == (KEY1, KEY2)
    for bad, match in [(str(tmp_path / "missing.txt"), "no key file"), ("short", "at least 16"),
                       (f"{KEY1},has space in it 12345", "key 2"), ("é" * 20, "printable ASCII")]:
        with pytest.raises(QABotError, match=match) as e:
            load_api_keys(bad)
        assert KEY1 not in str(e.value) and "short" not in str(e.value).split(":")[0]
    (tmp_path / "empty.txt").write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(QABotError, match="holds no key"):
        load_api_keys(str(tmp_path / "empty.txt"))


def test_exposure_warning_only_when_open_beyond_loopback(app):
    _, _, api = app  # no keys
    assert exposure_warning("127.0.0.1", api) is None
    assert "QA_BOT_API_KEYS" in exposure_warning("0.0.0.0", api)

    class Keyed:
        keys = (b"k",)
    assert exposure_warning("0.0.0.0", Keyed()) is None


def test_keys_from_environment_file_and_never_logged(tmp_path):
    """`python tests/fakes.py` (the real UI + API around the FakeBot) with QA_BOT_API_KEYS naming a key file."""
    keyfile = tmp_path / "api_keys"
    keyfile.write_text(f"{KEY1}\n{KEY2}\n", encoding="utf-8")
    port = free_port()
    log = OUT / "api_keys_server.log"
    proc, url = start_server(["tests/fakes.py", "--port", str(port), "--delay", "0"], port, log,
                             env={"QA_BOT_API_KEYS": str(keyfile), "PYTHONPATH": str(ROOT)})  # this checkout
    wrong = "Bearer not-the-key-but-logged-maybe-0000"
    try:
        wait_until_up(url, proc, timeout=60)
        assert chat(url).status_code == 401
        assert chat(url, headers={"Authorization": wrong}).status_code == 401
        ok = chat(url, headers={"Authorization": f"Bearer {KEY2}"})
        assert ok.status_code == 200 and "2014" in ok.text
        streamed = chat(url, stream=True, headers={"Authorization": f"Bearer {KEY1}"})
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("[DONE]")
    finally:
        stop_server(proc)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert text.count("/v1/chat/completions -> ") == 4, text[-2000:]  # the log holds the requests...
    assert "-> 401" in text and "-> 200" in text
    assert KEY1 not in text and KEY2 not in text and "not-the-key" not in text  # ...and no key


# --- the Gradio /ask endpoint ---------------------------------------------------------------------------------


def gradio_call(url, data):
    """A raw HTTP call of /ask (no gradio_client); returns the (event, data) of its result."""
    r = httpx.post(f"{url}/gradio_api/call/ask", json={"data": data}, timeout=10)
    assert r.status_code == 200, r.text
    events = httpx.get(f"{url}/gradio_api/call/ask/{r.json()['event_id']}", timeout=20).text
    lines = [ln for ln in events.splitlines() if ln.startswith(("event:", "data:"))]
    return lines[-2].split(":", 1)[1].strip(), json.loads(lines[-1].split(":", 1)[1])


def test_gradio_ask_without_history(app):
    url = app[0]
    assert "2014" in Client(url, verbose=False).predict(Q, api_name="/ask")["answer"]
    event, data = gradio_call(url, [Q])  # a raw call that omits history
    assert event == "complete" and "2014" in data[0]["answer"] and "draft" not in data[0]
    event, data = gradio_call(url, ["How much revenue did it make?", [["Tell me about Alibaba's cloud business.",
                                                                        "It is spinning it off."]]])
    assert event == "complete" and "2.7 billion" in data[0]["answer"]


def test_gradio_ask_takes_a_filter(app):
    url, bot, _ = app
    event, data = gradio_call(url, [Q, None, "alibaba_cloud_spinoff.txt", "", None])
    assert event == "complete" and "2014" in data[0]["answer"]
    assert bot.filters[-1] == {"source": "alibaba_cloud_spinoff.txt"}
    event, body = gradio_call(url, [Q, [], "nope"])
    assert event == "error" and "no document matches --source nope" in body["error"]
    event, body = gradio_call(url, [Q, [], None, "2024-01-01", "2023-01-01"])
    assert event == "error" and "--since 2024-01-01 is after --until 2023-01-01" in body["error"]


@pytest.mark.parametrize("data,message", [
    ([], "takes 1 to 5 inputs; got 0"),
    ([Q, None, 7], "source must be a string"),
    ([42], "question must be a string"),
    ([Q, "not a list"], "history must be a list of [question, answer] pairs"),
    ([Q, [["only a question"]]], "item 0 is not"),
    ([Q, [[1, 2]]], "item 0 is not"),
])
def test_gradio_ask_malformed_calls_say_what_is_wrong(app, data, message):
    event, body = gradio_call(app[0], data)
    assert event == "error" and message in (body or {}).get("error", ""), body


# --- the real bot, through the official openai client and LangChain's ChatOpenAI ------------------------------


@pytest.fixture(scope="module")
def real_api(real_bot):
    real_bot.warm_up()  # load index, embedder and LLM here, so each test times only its own questions
    demo, url = serve(real_bot, api_keys=())
    try:
        yield url
    finally:
        demo.close()


def openai_client(url):
    from openai import OpenAI

    # The real reader answers: on a busy machine a question can take minutes (conftest.TEST_LLM_TIMEOUT).
    return OpenAI(base_url=f"{url}/v1", api_key="not-needed-on-127.0.0.1", max_retries=0, timeout=TEST_LLM_TIMEOUT)


def check_citations(content: str, citations: list) -> None:
    assert citations, "no citations"
    for c in citations:
        text = (ROOT / "docs_corpus" / c["source"]).read_text(encoding="utf-8")
        assert text[c["start"]:c["end"]] == c["text"] and f"[{c['n']}]" in content


@pytest.mark.slow
def test_real_openai_client_answers_with_citations(real_api):
    client = openai_client(real_api)
    assert [m.id for m in client.models.list()] == ["qa-bot"]
    resp = client.chat.completions.create(model="qa-bot", messages=[{"role": "user", "content": Q}])
    content = resp.choices[0].message.content
    print(f"\n{Q} -> {content}")
    assert "2014" in content and resp.abstained is False
    check_citations(content, resp.citations)


@pytest.mark.slow
def test_real_openai_client_streams_with_citations(real_api):
    stream = openai_client(real_api).chat.completions.create(
        model="qa-bot", messages=[{"role": "user", "content": Q}], stream=True)
    pieces, last = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        last = chunk
    content = "".join(pieces)
    assert "2014" in content and last.choices[0].finish_reason == "stop"
    assert last.abstained is False and last.text == content
    check_citations(content, last.citations)


@pytest.mark.slow
def test_real_unanswerable_question_abstains(real_api):
    client = openai_client(real_api)
    resp = client.chat.completions.create(model="qa-bot", messages=[{"role": "user", "content": "Who founded Alibaba?"}])
    assert resp.abstained is True and resp.citations == [] and resp.choices[0].message.content == REFUSAL
    chunks = list(client.chat.completions.create(
        model="qa-bot", messages=[{"role": "user", "content": "Who founded Alibaba?"}], stream=True))
    assert chunks[-1].abstained is True and chunks[-1].citations == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REFUSAL


@pytest.mark.slow
def test_real_follow_up_uses_history(real_api):
    client = openai_client(real_api)
    first_q = "What is Alibaba doing with its cloud unit?"
    first = client.chat.completions.create(model="qa-bot", messages=[{"role": "user", "content": first_q}])
    follow = client.chat.completions.create(model="qa-bot", messages=[
        {"role": "user", "content": first_q},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "How much revenue did it make?"}])
    content = follow.choices[0].message.content
    assert "2.7 billion" in content and follow.abstained is False, content
    check_citations(content, follow.citations)


@pytest.mark.slow
def test_real_langchain_chat_openai_in_a_chain(real_api):
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(base_url=f"{real_api}/v1", api_key="not-needed", model="qa-bot", max_retries=0,
                       timeout=TEST_LLM_TIMEOUT)
    prompt = ChatPromptTemplate.from_messages([("system", "Answer from the article."), ("placeholder", "{history}"),
                                               ("human", "{question}")])
    chain = prompt | model | StrOutputParser()
    answer = chain.invoke({"question": Q, "history": []})
    assert "2014" in answer and "[1]" in answer
    assert "2014" in "".join(chain.stream({"question": Q, "history": []}))
    cloud = "What is Alibaba doing with its cloud unit?"
    history = [HumanMessage(cloud), AIMessage(chain.invoke({"question": cloud, "history": []}))]
    assert "2.7 billion" in chain.invoke({"question": "How much revenue did it make?", "history": history})
