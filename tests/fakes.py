"""A fast stand-in for qa_bot.QABot with the same interface, for UI tests that must not load models.

Retrieval is word overlap over sentences; the "answer" is the best sentence with a [1] marker. It is
deliberately dumb but honest: it returns real spans into real document text, abstains on unrelated
questions, and rewrites follow-ups using the history, so the UI plumbing can be checked end to end.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from qa_bot import REFUSAL, Answer, Chunk, Citation, Hit, Settings
from qa_bot.errors import BackendError, CorpusError, InvalidQuestion

_WORD = re.compile(r"[a-z0-9$%.]+")
_STOP = set("a an the of in on to is was did does do how what when who which much many it its and for by "
            "with at from as be are this that make made".split())


def _words(text: str) -> set[str]:
    return {w.strip(".") for w in _WORD.findall(text.lower())} - _STOP - {""}


@dataclass(frozen=True)
class _FakeSettings(Settings):
    max_upload_bytes: int = 20_000  # the lead is adding this field to the real Settings


@dataclass(frozen=True)
class FakeSessionDocs:
    docs: tuple[tuple[str, str], ...] = ()  # (name, text); immutable like the real SessionDocs


@dataclass
class FakeBot:
    corpus_dir: Path | None = None
    delay: float = 0.0  # seconds per streamed piece, to make streaming and queueing observable
    gate: threading.Event | None = None  # when set, ask() blocks until the event is set (queue tests)
    max_upload_bytes: int = 20_000
    settings: Settings = field(default_factory=Settings)
    calls: list[str] = field(default_factory=list)

    def __post_init__(self):
        folder = Path(self.corpus_dir or self.settings.corpus_dir)
        self._corpus = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}
        self.settings = _FakeSettings(corpus_dir=folder, max_upload_bytes=self.max_upload_bytes)

    # --- the QABot interface ---------------------------------------------------------------------
    def document_text(self, source: str, session: FakeSessionDocs | None = None) -> str:
        for name, text in (session.docs if session else ()):
            if name == source:
                return text
        if source in self._corpus:
            return self._corpus[source]
        raise KeyError(source)

    def add_document(self, session: FakeSessionDocs | None, name: str, data: bytes) -> FakeSessionDocs:
        if len(data) > self.max_upload_bytes:
            raise CorpusError(f"{name} is too large ({len(data)} bytes; the limit is {self.max_upload_bytes}).")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CorpusError(f"{name} is not a UTF-8 text file.") from None
        if "\x00" in text:
            raise CorpusError(f"{name} looks like a binary file.")
        if not text.strip():
            raise CorpusError(f"{name} is empty.")
        old = session.docs if session else ()
        return FakeSessionDocs(tuple((n, t) for n, t in old if n != name) + ((name, text),))

    def ask(self, question: str, *, history: Sequence[tuple[str, str]] = (), session=None) -> Answer:
        answer = None
        for piece in self.ask_stream(question, history=history, session=session):
            answer = piece
        assert isinstance(answer, Answer)
        return answer

    def ask_stream(self, question: str, *, history: Sequence[tuple[str, str]] = (), session=None
                   ) -> Iterator[str | Answer]:
        self.calls.append(question)
        if self.gate is not None:
            self.gate.wait(30)
        if not question or not question.strip():
            raise InvalidQuestion("Please type a question.")
        if question == "__crash__":  # an unexpected bug: its details must never reach the user
            raise RuntimeError("internal detail /secret/path")
        if question == "__backend_down__":  # the LLM server is unreachable, before any text
            raise BackendError("cannot reach the language model server at http://10.0.0.9:8000/v1")
        if question == "__dies_midway__":  # the LLM server dies after a few verified words were streamed
            yield "Alibaba went "
            yield "public "
            raise BackendError("the language model server stopped mid-answer (http://10.0.0.9:8000/v1)")
        t0 = time.perf_counter()
        standalone = None
        if history and re.search(r"\b(it|its|they|that)\b", question.lower()):
            standalone = f"{question} ({history[-1][0]})"
        hits = self._retrieve(standalone or question, session)
        t1 = time.perf_counter()
        best = hits[0] if hits else None
        if best is None or best.score < 0.34:
            yield REFUSAL
            yield Answer(question, REFUSAL, True, (), tuple(hits), {"retrieve": t1 - t0, "generate": 0.0,
                                                                    "total": time.perf_counter() - t0},
                         standalone)
            return
        c = best.chunk
        text = f"{c.text} [1]"
        for word in re.findall(r"\S+\s*", text):
            if self.delay:
                time.sleep(self.delay)
            yield word
        timings = {"retrieve": t1 - t0, "generate": time.perf_counter() - t1, "total": time.perf_counter() - t0}
        yield Answer(question, text, False, (Citation(1, c.source, c.start, c.end, c.text),), tuple(hits),
                     timings, standalone)

    def close(self) -> None:
        pass

    # --- helpers -----------------------------------------------------------------------------------
    def _retrieve(self, question: str, session) -> list[Hit]:
        q = _words(question)
        if not q:
            return []
        docs = list(self._corpus.items()) + list(session.docs if session else ())
        hits = []
        for name, text in docs:
            for m in re.finditer(r"\S.*?(?:[.!?](?=\s|$)|\Z)", text, re.S):  # sentences
                score = len(q & _words(m.group())) / len(q)
                hits.append(Hit(Chunk(f"{name}:{m.start()}", name, m.start(), m.end(), m.group()), score))
        hits.sort(key=lambda h: -h.score)
        return hits[:3]


# --- test harness: serve the real UI around a bot, in a subprocess ----------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc=None, timeout: float = 300.0) -> float:
    """Poll the app's /config until it answers; returns the seconds waited. Fails fast if the process died."""
    import urllib.request

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout:.0f}s")


def start_server(argv: list[str], port: int, log_path: Path, env: dict | None = None):
    """Start `python <argv>` serving on 127.0.0.1:port; returns (process, url). Caller terminates it."""
    import os
    import subprocess
    import sys

    full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=subprocess.STDOUT, env=full_env,
                            cwd=Path(__file__).resolve().parent.parent)
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except Exception:
        proc.kill()


if __name__ == "__main__":  # python tests/fakes.py --port N: the real UI around the fake bot
    import argparse
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from qa_bot.ui import build_app, launch

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.03)
    ap.add_argument("--queue-size", type=int, default=8)
    ap.add_argument("--upload-bytes", type=int, default=20_000)
    a = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch(build_app(FakeBot(delay=a.delay, max_upload_bytes=a.upload_bytes), queue_size=a.queue_size),
           host="127.0.0.1", port=a.port)
