"""The served app through gradio_client, on 127.0.0.1: the `ask` API, follow-ups, the bounded queue, per-session
documents, error messages, file-route lockdown, and `python app.py` honouring --port / GRADIO_SERVER_*.

Most tests run the real UI around the fake bot in a thread of this process (fast, and the queue test can hold the
bot); the `slow` tests start `python app.py` with the real models in a subprocess.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import ROOT
from fakes import FakeBot, free_port, start_server, stop_server, wait_until_up

from qa_bot import REFUSAL, REFUSAL_MANY, QABotError, Settings
from qa_bot.ui import build_app, launch

OUT = ROOT / "test-output"
Q = "When did Alibaba go public in New York?"
IPO_SENTENCE = "Alibaba went public in New York back in 2014, marking the largest IPO at the time."


@pytest.fixture(scope="module")
def app():
    """(url, bot): the UI around a FakeBot whose `gate` can hold answers; queue max_size 1."""
    bot = FakeBot(gate=threading.Event())
    bot.gate.set()
    with served(bot, queue_size=1) as (url, _):
        try:
            yield url, bot
        finally:
            bot.gate.set()


def client(url):
    return Client(url, verbose=False, download_files=False)


@contextmanager
def served(bot, **build):
    """(url, demo): the UI around `bot` on a free 127.0.0.1 port, closed on exit."""
    demo = build_app(bot, **build)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}", demo
    finally:
        demo.close()


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
    with served(bot, queue_size=2) as (url, _):
        out = client(url).predict("What colour is the ferry over Paris?", [], api_name="/chat")
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


def upload(url, *files, **kw):
    """POST files to the upload route as the page does: [(name, bytes)] in the multipart field "files"."""
    return httpx.post(f"{url}/gradio_api/upload", files=[("files", f) for f in files], timeout=30, **kw)


def call(url, api_name, data, session=None) -> tuple[str, object]:
    """A raw call as any HTTP client can make it (session: a session hash, to keep one session's state)."""
    r = httpx.post(f"{url}/gradio_api/call/{api_name}", json={"data": data, "session_hash": session}, timeout=10)
    assert r.status_code == 200, r.text
    events = httpx.get(f"{url}/gradio_api/call/{api_name}/{r.json()['event_id']}", timeout=30).text
    kind, _, payload = events.strip().rpartition("event: ")[2].partition("\ndata: ")
    return kind, json.loads(payload)


def add(url, path, session=None) -> str:
    """The add_document event for an uploaded path, as the page sends it: the upload note's HTML."""
    kind, out = call(url, "add_document", [{"path": path, "meta": {"_type": "gradio.FileData"}}], session)
    assert kind == "complete", out
    return str(out)


def test_upload_limits_and_non_text(app, tmp_path):
    url = app[0]
    r = upload(url, ("big.txt", b"x" * 30_000))  # FakeBot's limit is 20,000 bytes: refused before it is stored
    assert r.status_code == 413 and "big.txt is too large" in r.text and "at most 20 KB" in r.text  # in KB/MB, not bytes
    r = upload(url, ("blob.txt", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"))
    assert r.status_code == 200
    assert "qa-error" in add(url, r.json()[0])  # the library's verdict, shown in the note


def test_upload_route_takes_one_checked_file_and_caps_the_total(tmp_path):
    """W4: the upload route stores only what add_document may take (one document a request, within the size
    limit), at most upload_total_files/bytes across sessions, each under an unguessable folder; not served back."""
    bot = FakeBot(settings=Settings(upload_total_files=3))
    with served(bot, queue_size=2, api_keys=()) as (url, demo):
        many = upload(url, *[(f"n{i}.txt", b"tiny") for i in range(50)])
        assert many.status_code == 400 and "one" in many.text
        assert upload(url, ("x.xlsx", b"PK\x03\x04")).status_code == 400  # .pdf and .html are documents since issue 11
        assert upload(url, ("x.svg", b"<script>")).status_code == 400
        paths = [upload(url, (f"d{i}.txt", b"The zorblax budget is 42 gold coins.")).json()[0] for i in range(3)]
        full = upload(url, ("d3.txt", b"more"))
        assert full.status_code == 429 and "try again" in full.text
        store = demo.qa_handlers.uploads.root
        assert sorted(p.name for p in store.rglob("*.txt")) == ["d0.txt", "d1.txt", "d2.txt"]
        assert len({Path(p).parent.name for p in paths}) == 3 and all(len(Path(p).parent.name) == 32 for p in paths)
        for p in paths:  # another session cannot download them through the file route
            assert httpx.get(f"{url}/gradio_api/file={p}", timeout=10).status_code == 404
        assert "Added" in add(url, paths[0])  # taking one frees its place, and leaves nothing behind
        assert not Path(paths[0]).parent.exists()
        assert upload(url, ("d3.txt", b"The zorblax budget is 43 gold coins.")).status_code == 200
    assert not store.exists()  # what was never added is deleted when the server stops


def test_pending_uploads_expire_after_the_ttl(tmp_path):
    from qa_bot.web import UploadStore

    stale = tmp_path / "qa_bot-uploads-crashed"  # left by a server that did not stop cleanly
    (stale / ("f" * 32)).mkdir(parents=True)
    (stale / ("f" * 32) / "old.txt").write_text("old")
    os.utime(stale, (time.time() - 60, time.time() - 60))
    store = UploadStore(tmp_path, Settings(upload_ttl=0.2))
    assert not stale.exists()
    try:
        path = store.put("a.txt", b"hello")
        assert Path(path).read_bytes() == b"hello"
        time.sleep(0.5)  # nobody uploads again: the store's own sweeper deletes it
        assert not Path(path).parent.exists() and store.pending == 0
        with pytest.raises(QABotError, match="upload the file again"):
            store.take(path)
    finally:
        store.close()
    assert not store.root.exists()


def test_add_document_cannot_read_or_delete_files_by_path(app, tmp_path):
    """W6: add_document takes only a path the upload route handed out, once; naming any other file (even one
    in Gradio's own upload folder) neither deletes it nor adds it to the caller's session."""
    from gradio.utils import get_upload_folder

    url = app[0]
    victim_dir = Path(get_upload_folder()) / f"qa-test-{time.time_ns()}"
    victim_dir.mkdir(parents=True)
    victim = victim_dir / "notes.txt"
    victim.write_text("The zorblax budget is 42 gold coins.", encoding="utf-8")
    try:
        note = add(url, str(victim), "attacker")
        assert "qa-error" in note and "upload" in note
        assert victim.exists()
        assert "42 gold" not in str(call(url, "chat", ["What is the zorblax budget?", []], "attacker"))
        mine = upload(url, ("mine.txt", b"The zorblax budget is 7 gold coins.")).json()[0]
        assert "Added" in add(url, mine, "owner")
        assert "qa-error" in add(url, mine, "attacker")  # used once: nobody can take it again
    finally:
        victim.unlink(missing_ok=True)
        victim_dir.rmdir()


def test_sessions_hold_a_bounded_number_of_documents(tmp_path):
    bot = FakeBot(settings=Settings(max_session_documents=2))
    with served(bot, queue_size=2, api_keys=()) as (url, _):
        notes = [add(url, upload(url, (f"d{i}.txt", b"Ferries leave hourly.")).json()[0], "s1") for i in range(3)]
        assert "Added" in notes[0] and "Added" in notes[1]
        assert "qa-error" in notes[2] and "already has 2" in notes[2]
        assert "Added" in add(url, upload(url, ("d0.txt", b"Ferries leave daily.")).json()[0], "s1")  # a replacement
        assert "Added" in add(url, upload(url, ("d9.txt", b"Ferries leave daily.")).json()[0], "s2")  # another session


def test_adding_a_document_does_not_hold_up_questions():
    """L4 (app half): while one user's upload is being embedded, another user's question is answered at once
    (adding runs in its own concurrency group, not in the models' single slot)."""
    adding, release = threading.Event(), threading.Event()

    class SlowAddBot(FakeBot):
        def add_document(self, *args, **kwargs):
            adding.set()
            release.wait(30)  # a 1 MB document takes ~40 s to embed on 2 cores
            return super().add_document(*args, **kwargs)

    notes, answers = [], []
    with served(SlowAddBot(), queue_size=4, api_keys=()) as (url, _):
        try:
            path = upload(url, ("zorblax.md", b"The zorblax budget is 42 gold coins.")).json()[0]
            adder = threading.Thread(target=lambda: notes.append(add(url, path, "uploader")))
            adder.start()
            assert adding.wait(20)
            t0 = time.monotonic()
            asker = threading.Thread(target=lambda: answers.append(call(url, "ask", [Q], "asker")))
            asker.start()
            asker.join(10)
            assert answers and answers[0][0] == "complete" and "2014" in answers[0][1][0]["text"], answers
            assert time.monotonic() - t0 < 10
        finally:
            release.set()
            adder.join(30)
    assert notes and "Added" in notes[0]


@pytest.mark.parametrize("path,headers,body", [
    ("/gradio_api/call/ask", {"content-type": "application/json"}, "declared"),
    ("/gradio_api/call/ask", {"content-type": "application/json"}, "chunked"),
    ("/gradio_api/queue/join", {"content-type": "application/json"}, "chunked"),
    ("/gradio_api/upload", {"content-type": "multipart/form-data; boundary=x"}, "chunked"),
    ("/v1/chat/completions", {"content-type": "application/json"}, "declared"),
])
def test_request_bodies_are_capped_on_every_route(app, path, headers, body):
    """W12: past max_request_bytes (2 MiB) a request gets 413, whether it declares its length or streams it."""
    url = app[0]
    sent = 0

    def stream():
        nonlocal sent
        for _ in range(200):  # 20 MB if nobody stops reading
            sent += 100_000
            yield b" " * 100_000

    head = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\n' if "multipart" in str(
        headers) else b""
    content = head + b" " * 3_000_000 if body == "declared" else itertools.chain([head], stream())
    try:
        r = httpx.post(f"{url}{path}", content=content, headers=headers, timeout=30)
    except httpx.HTTPError:  # the server may close the connection while the client is still sending
        assert body == "chunked" and sent < 20_000_000
        return
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert "limit" in r.text
    assert httpx.get(f"{url}/config", timeout=10).status_code == 200  # still serving


@pytest.mark.parametrize("api_name,data,message", [
    ("ask", ["q", [], "", "", "", "extra"], "/ask takes 1 to 5 inputs; got 6"),  # history, source, since, until
    ("chat", [1, 2, 3, 4, 5, 6], "/chat takes 4 inputs; got 6"),
    ("chat", ["When?", "notalist", None, None], "/chat: input 2 (Chatbot) is malformed"),
    ("add_document", ["x"], "/add_document: input 1 (UploadButton) is malformed"),
    ("add_document", [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, None], "/gradio_api/upload"),
])
def test_malformed_calls_get_a_message(app, api_name, data, message):
    """W10: a wrong-arity or malformed raw call gets an error that says what is wrong, never {"error": null}."""
    kind, out = call(app[0], api_name, data)
    assert kind == "error" and message in str(out.get("error")), out


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


@pytest.mark.slow  # starts `python app.py` twice (each imports Gradio afresh)
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


def test_odd_file_names_are_stored_safely(app):
    from qa_bot.web import safe_name

    assert safe_name("my notes (2).md") == "my_notes__2_.md" and safe_name("a\x00b.txt") == "a_b.txt"
    r = upload(app[0], ("é" * 300 + "\n.txt", b"The ferry leaves at 9 am."))
    assert r.status_code == 200 and Path(r.json()[0]).name.endswith(".txt")
    assert "Added" in add(app[0], r.json()[0])


@pytest.mark.parametrize("env,message", [
    ({"QA_BOT_MAX_SESSION_DOCUMENTS": "0"}, r"MAX_SESSION_DOCUMENTS=0 must be at least 1"),
    ({"QA_BOT_UPLOAD_TTL": "0"}, r"UPLOAD_TTL=0(\.0)? must be more than 0"),
    ({"QA_BOT_UPLOAD_TOTAL_BYTES": "1000"}, "UPLOAD_TOTAL_BYTES must be at least"),
    ({"QA_BOT_MAX_REQUEST_BYTES": "1048576"}, "MAX_REQUEST_BYTES must be at least"),
])
def test_upload_settings_are_validated(env, message):
    with pytest.raises(QABotError, match=message):
        Settings.from_env(env)
    assert Settings.from_env({"QA_BOT_MAX_SESSION_DOCUMENTS": "9", "QA_BOT_UPLOAD_TTL": "60"}).upload_ttl == 60.0


def test_the_uploader_sees_progress(tmp_path):
    """L4: the page shows how far embedding an added document has got (the library's progress callback)."""

    class ProgressBot(FakeBot):
        def add_document(self, session, name, data, progress=None):
            for done in range(1, 11):
                time.sleep(0.2)
                progress(done, 10)
            return super().add_document(session, name, data)

    doc = tmp_path / "zorblax.md"
    doc.write_text("The zorblax budget is 42 gold coins.", encoding="utf-8")
    seen = []
    with served(ProgressBot(), queue_size=2, api_keys=()) as (url, _):
        job = client(url).submit(handle_file(str(doc)), api_name="/add_document")
        while not job.done():
            units = (job.status().progress_data or [None])[0]
            if units is not None and units.index is not None:
                seen.append((units.index, units.length, units.desc))
            time.sleep(0.05)
        assert "Added" in job.result()
    assert seen and all(length == 10 and "Embedding zorblax.md" in desc for _, length, desc in seen), seen
    assert len({i for i, _, _ in seen}) > 1  # it moves
