"""Issue 46, a folder that re-indexes itself (qa_bot/watch.py, `app.py --watch`, `qa-bot index --watch`): adding,
changing and deleting a document changes the answers within a deadline while another thread keeps asking, only
changed documents are read again, and a half-written file is retried, never indexed half.

The fast tests run the real watcher, index and retrieval with the hashing embedder and a scripted reader; the
`slow` ones run `app.py --watch` and `qa-bot index --watch` with the real models. The deadline for a change to
show is QA_BOT_TEST_WATCH_DEADLINE seconds (120 by default: these tests check that answers change, on a machine
that may be busy; the seconds each change took are printed, and the issue's 10 s bound on a quiet machine is
measured by running them with QA_BOT_TEST_WATCH_DEADLINE=10)."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from doc_makers import make_docx
from fakes import free_port, scripted_bot, start_server, stop_server, wait_until_up
from qa_bot.ui import render_corpus
from qa_bot.watch import CorpusWatcher

DEADLINE = float(os.environ.get("QA_BOT_TEST_WATCH_DEADLINE") or 120)
OUT = Path(__file__).resolve().parent.parent / "test-output"  # beside the other tests' logs (git-ignored)

WEATHER = "The harbour city recorded 31 millimetres of rain on Tuesday. Forecasters expect a dry weekend.\n"
FERRY = "The first ferry to Marsh Island leaves at {} daily. A single ticket costs 4 dollars.\n"
LIGHTHOUSE = "The lighthouse at Gull Point was built in 1871 by the harbour board.\n"
Q_WEATHER = "How much rain did the harbour city record on Tuesday?"
Q_FERRY = "When does the first ferry to Marsh Island leave?"
Q_LIGHT = "When was the lighthouse at Gull Point built?"


def _corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "weather.md").write_text(WEATHER, encoding="utf-8")
    (d / "ferry.txt").write_text(FERRY.format("9 am"), encoding="utf-8")
    return d


class Asker(threading.Thread):
    """Asks `question` again and again until stopped, keeping every answer text and every error: the app must
    keep answering, correctly, through every re-index and swap."""

    def __init__(self, ask, question: str):
        super().__init__(daemon=True)
        self.ask, self.question = ask, question
        self.answers: list[str] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.answers.append(self.ask(self.question))
            except BaseException as exc:  # noqa: BLE001 (every failure is a finding)
                self.errors.append(exc)

    def stop(self):
        self.done.set()
        self.join(120)


def _until(ask, question: str, good, deadline: float = DEADLINE) -> tuple[float, str]:
    """(seconds until ask(question) gave an answer for which good(answer) holds, that answer); fails past deadline."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < deadline:
        last = ask(question)
        took = time.monotonic() - t0
        if good(last):
            # an answer asked before the deadline but given after it is late too
            assert took <= deadline, f"{question!r} answered {last!r} only {took:.1f} s after the change"
            return took, last
        time.sleep(0.05)
    pytest.fail(f"{question!r} still answered {last!r} {deadline:.0f} s after the change")


def test_adding_changing_and_deleting_documents_changes_answers_while_another_thread_asks(tmp_path):
    corpus = _corpus(tmp_path)
    bot = scripted_bot(corpus, tmp_path / "cache", default=None, watch_debounce=0.3)
    ask = lambda q: bot.ask(q).text  # noqa: E731
    assert "9 am" in ask(Q_FERRY) and ask(Q_LIGHT) == bot.refusal
    watcher = CorpusWatcher(bot).start()
    asker = Asker(ask, Q_WEATHER)
    asker.start()
    try:
        (corpus / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
        _until(ask, Q_LIGHT, lambda a: "1871" in a)
        (corpus / "ferry.txt").write_text(FERRY.format("11 am"), encoding="utf-8")
        _until(ask, Q_FERRY, lambda a: "11 am" in a)
        (corpus / "lighthouse.txt").unlink()
        _until(ask, Q_LIGHT, lambda a: a == bot.refusal)
    finally:
        asker.stop()
        watcher.stop()
    assert not asker.errors, asker.errors
    assert len(asker.answers) > 3 and all("31 millimetres" in a for a in asker.answers), set(asker.answers)
    assert watcher.version == 3 and bot.corpus_version == 3
    assert sorted(bot.documents) == ["ferry.txt", "weather.md"]


def test_only_changed_documents_are_read_again_and_only_new_text_is_embedded(tmp_path, monkeypatch):
    corpus = _corpus(tmp_path)
    (corpus / "quarry.docx").write_bytes(make_docx("Quarry", "Ana Ruiz", "Quarry", ["The quarry reopens in May."]))
    bot = scripted_bot(corpus, tmp_path / "cache", default=None, watch_debounce=0.2)
    _ = bot.index
    watcher = CorpusWatcher(bot)
    assert watcher.sync() is None  # the first look: the documents the bot loaded are taken as they are
    import qa_bot.watch as watch

    read = []
    real = watch.document_from_bytes
    monkeypatch.setattr(watch, "document_from_bytes", lambda source, *a, **k: read.append(source) or real(source, *a, **k))
    (corpus / "ferry.txt").write_text(FERRY.format("10 am"), encoding="utf-8")
    time.sleep(0.3)
    done = watcher.sync()
    assert read == ["ferry.txt"]  # the DOCX and the Markdown were not parsed again
    assert done.changed == ("ferry.txt",) and done.added == done.removed == ()
    assert done.embedded == 1 and done.chunks == 3  # only the changed chunk's text
    assert "re-indexed (1 changed): 3 documents, 3 chunks, 2 reused, 1 embedded" in done.summary()
    assert watcher.sync() is None and read == ["ferry.txt"]  # nothing changed since: nothing read


def test_a_half_written_file_is_retried_never_indexed_half(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="qa_bot")
    corpus = _corpus(tmp_path)
    bot = scripted_bot(corpus, tmp_path / "cache", default=None, watch_debounce=0.2)
    _ = bot.index
    watcher = CorpusWatcher(bot)
    watcher.sync()
    # A text file still open for writing, its writer paused past the quiet time: not read.
    with open(corpus / "harbor.txt", "w", encoding="utf-8") as f:
        f.write("The harbor opened in 19")
        f.flush()
        time.sleep(0.5)
        assert watcher.sync() is None and "harbor.txt" not in bot.documents
        f.write("50 after the great storm.\n")
    time.sleep(0.3)
    watcher.sync()
    assert bot.documents["harbor.txt"].text == "The harbor opened in 1950 after the great storm.\n"
    # A DOCX whose copy stalled half-way (closed, but it does not open yet): retried, not skipped; while an older
    # version exists, that one is still served.
    whole = make_docx("Quarry", "Ana Ruiz", "Quarry", ["The quarry reopens in May."])
    (corpus / "quarry.docx").write_bytes(whole[: len(whole) // 2])
    time.sleep(0.3)
    assert watcher.sync() is None and "quarry.docx" not in bot.documents and "quarry.docx" in watcher._pending
    assert "skipped quarry.docx" not in caplog.text and not any(s.source == "quarry.docx" for s in bot.skipped)
    (corpus / "quarry.docx").write_bytes(whole)
    time.sleep(0.3)
    assert watcher.sync().added == ("quarry.docx",) and "reopens in May" in bot.documents["quarry.docx"].text


def test_an_emptied_folder_keeps_the_last_index_and_says_so(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="qa_bot")
    corpus = _corpus(tmp_path)
    bot = scripted_bot(corpus, tmp_path / "cache", default=None, watch_debounce=0.2)
    watcher = CorpusWatcher(bot)
    watcher.sync()
    for p in corpus.iterdir():
        p.unlink()
    assert watcher.sync() is None and sorted(bot.documents) == ["ferry.txt", "weather.md"]
    assert "no usable documents" in caplog.text and "still answering from the last index" in caplog.text


def test_the_header_says_when_the_corpus_last_changed():
    html = render_corpus(["A", "B"], changed=1_700_000_000.0)
    assert "Corpus last changed 2023-11-14 22:13:20 UTC" in html
    assert "last changed" not in render_corpus(["A", "B"])


# --- the real app and command ------------------------------------------------------------------------------------
def _post(url: str, question: str) -> str:
    body = json.dumps({"model": "qa-bot", "messages": [{"role": "user", "content": question}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())["choices"][0]["message"]["content"]


def _get(url: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def watched_app(tmp_path_factory):
    """`app.py --watch --no-warmup` over a corpus of two short documents, with the real models."""
    tmp = tmp_path_factory.mktemp("watched")
    corpus = _corpus(tmp)
    port = free_port()
    proc, url = start_server(["app.py", "--watch", "--no-warmup", "--port", str(port), "--corpus", str(corpus)], port,
                             OUT / "app_watch.log", env={"QA_BOT_CACHE_DIR": str(tmp / "cache"), "HF_HUB_OFFLINE": "1"})
    try:
        wait_until_up(url, proc, timeout=300)
        yield url, corpus
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_readyz_is_false_until_the_reader_is_warm_and_true_after(watched_app):
    url, _ = watched_app
    assert _get(url, "/healthz") == (200, {"status": "ok"})
    status, body = _get(url, "/readyz")  # --no-warmup: nothing is loaded before the first question
    assert status == 503 and body["ready"] is False and body["reader_warm"] is False and body["index_loaded"] is False
    assert "31 millimetres" in _post(url, Q_WEATHER)
    status, body = _get(url, "/readyz")
    assert status == 200 and body["ready"] is True and body["reader_warm"] and body["index_loaded"]
    assert body["documents"] == 2 and body["chunks"] >= 2 and len(body["index_version"]) == 16
    assert body["corpus_changed"].endswith("Z")


@pytest.mark.slow
def test_app_watch_changes_answers_within_the_deadline_while_another_client_asks(watched_app):
    url, corpus = watched_app
    ask = lambda q: _post(url, q)  # noqa: E731
    assert "9 am" in ask(Q_FERRY)
    asker = Asker(ask, Q_WEATHER)
    asker.start()
    took = {}
    try:
        (corpus / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
        took["added"], _ = _until(ask, Q_LIGHT, lambda a: "1871" in a)
        (corpus / "ferry.txt").write_text(FERRY.format("11 am"), encoding="utf-8")
        took["changed"], _ = _until(ask, Q_FERRY, lambda a: "11 am" in a)
        (corpus / "lighthouse.txt").unlink()
        took["deleted"], _ = _until(ask, Q_LIGHT, lambda a: "1871" not in a and "[" not in a)
    finally:
        asker.stop()
    print(f"seconds until the answer changed: {took} (deadline {DEADLINE:g} s; load {os.getloadavg()[0]:.1f})")
    assert not asker.errors, asker.errors
    assert asker.answers and all("31 millimetres" in a for a in asker.answers), set(asker.answers)
    status, body = _get(url, "/readyz")
    assert status == 200 and body["corpus_version"] == 3 and body["documents"] == 2


@pytest.mark.slow
def test_cli_index_watch_reindexes_what_changes_until_ctrl_c(tmp_path):
    corpus = _corpus(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_BOT_CACHE_DIR": str(tmp_path / "cache"),
           "QA_BOT_WATCH_DEBOUNCE": "0.3"}
    proc = subprocess.Popen([sys.executable, "-m", "qa_bot.cli", "index", "--watch", "--corpus", str(corpus)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()

    def wait_for(text: str, timeout: float = 300) -> str:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            found = [ln for ln in lines if text in ln]
            if found:
                return found[-1]
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        pytest.fail(f"no {text!r} in {''.join(lines)!r}")

    try:
        wait_for("following")
        (corpus / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
        line = wait_for("re-indexed (1 added)", DEADLINE)
        assert "3 documents, 3 chunks, 2 reused, 1 embedded" in line, line
        (corpus / "ferry.txt").unlink()
        assert "2 documents" in wait_for("re-indexed (1 removed)", DEADLINE)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(DEADLINE)  # a busy machine may take a while to finish the batch it is embedding
    assert code == 0 and "Traceback" not in "".join(lines)
