"""Fast stand-ins for the models, for tests that must not load them.

- FakeBot: a stand-in for qa_bot.QABot for UI and API tests; both satisfy qa_bot.Bot, with the same error
  types (tests/test_bot_protocol.py). Retrieval is word overlap over sentences; the answer is short (a number
  with its unit, or a name) taken from the best sentence, with a [1] marker, and its citation is that exact
  sentence, as QABot's answers are. It is deliberately dumb but honest: real spans into real document text,
  refusals listing the closest passages when some words are shared and nothing at all for unrelated
  questions (QABot's off-topic refusals), follow-ups rewritten from the history.
- ScriptedLLM: a qa_bot.testing.MockLLM that plays the reader, the check and the follow-up rewrite by prompt,
  not by turn: the reader's reply is chosen by the question (or computed from the numbered sentences by
  `short_answer`), the check always gets `verdict`, a rewrite its `rewrites` entry (else an empty question).
  Concurrent or reordered questions then get consistent replies.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from qa_bot import REFUSAL, REFUSAL_MANY, Answer, AnswerStream, Chunk, Citation, Hit, Settings, Stage
from qa_bot.question import clean_question
from qa_bot.errors import BackendError, CorpusError
from qa_bot.filters import Filter, allowed_sources
from qa_bot.formats_base import Metadata
from qa_bot.testing import MockLLM

_WORD = re.compile(r"[a-z0-9$%.]+")
_STOP = set("a an the of in on to is was did does do how what when who which much many it its and for by "
            "with at from as be are this that make made".split())
_EDGE = ".,;:!?()[]“”\"'’"

READ_NOTHING = '{"answer": "", "sentence": 0}'
YES, NO = '{"verdict": "yes"}', '{"verdict": "no"}'


def read(answer: str, sentence: int = 1) -> str:
    """A reader reply as the JSON-schema output gives it."""
    return json.dumps({"answer": answer, "sentence": sentence}, ensure_ascii=False)


def _words(text: str) -> set[str]:
    return {w.strip(".") for w in _WORD.findall(text.lower())} - _STOP - {""}


def short_answer(question: str, sentence: str) -> str:
    """The dumb reader: from `sentence`, a name for "who" questions (the first run of two or more capitalised
    words that are not the question's own), else the first number (with the word after it: "$2.7 billion",
    "42 gold"), searched after the last word the question shares with the sentence, then from the start.
    Falls back to the sentence itself. Tokens are kept as written (markup included)."""
    q = _words(question)
    tokens = sentence.split()
    if question.strip().lower().startswith("who"):
        runs, run = [], []
        for t in tokens + [""]:
            w = t.strip(_EDGE)
            if w[:1].isupper():
                run.append(w)
            if run and (not w[:1].isupper() or t.endswith((",", ".", ";", ":"))):
                runs.append(run)
                run = []
        own = [r for r in runs if not (_words(" ".join(r)) & q)]
        best = next((r for r in own if len(r) >= 2), own[0] if own else None)
        if best:
            return " ".join(best)
    last = max((i for i, t in enumerate(tokens) if _words(t) & q), default=-1)
    for start in (last + 1, 0):
        for i in range(start, len(tokens)):
            t = tokens[i]
            if any(ch.isdigit() for ch in t):
                core = t.rstrip(_EDGE)
                nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
                if core == t and nxt[:1].islower() and nxt.strip(_EDGE).lower() not in _STOP | {"of", "in", "on"}:
                    core += " " + nxt.rstrip(_EDGE)
                return core.lstrip("(“\"")
    return sentence.strip().rstrip(".")


def numbered_sentences(user_prompt: str) -> list[tuple[int, str]]:
    """The reader prompt's "[n] sentence" lines."""
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(r"^\[(\d+)\] (.*)$", user_prompt, re.M)]


def dumb_reader(user_prompt: str) -> str:
    """A reader reply computed from the prompt: the shown sentence sharing most words with the question, and
    `short_answer` from it; nothing when no sentence shares a word."""
    question = user_prompt.rsplit("Question:", 1)[-1].strip()
    q = _words(question)
    scored = [(len(q & _words(text)), n, text) for n, text in numbered_sentences(user_prompt)]
    best = max(scored, key=lambda x: (x[0], -x[1]), default=None)
    if not best or best[0] == 0:
        return READ_NOTHING
    return read(short_answer(question, best[2]), best[1])


class ScriptedLLM(MockLLM):
    """Reader replies by question: the first `script` key found in the question (case-insensitive) gives the
    reply, else `default` (None: `dumb_reader`); check prompts get `verdict`. Prompts are recorded as MockLLM does.
    `delay` seconds are slept per call (a model's think time)."""

    responses: list = []
    script: dict = {}
    rewrites: dict = {}  # follow-up rewrite prompts (prompts.REWRITE_SYSTEM): last question substring -> reply
    default: str | None = READ_NOTHING
    verdict: str = YES
    delay: float = 0.0

    def _reply(self, messages) -> str:
        from qa_bot import prompts

        self._record(messages)
        if self.delay:
            time.sleep(self.delay)
        system, user = str(messages[0].content), str(messages[-1].content)
        if system == prompts.CHECK_SYSTEM:
            return self.verdict
        if system == prompts.REWRITE_SYSTEM:
            last = user.rsplit("Last question:", 1)[-1].lower()
            return next((r for k, r in self.rewrites.items() if k.lower() in last), '{"question": ""}')
        question = user.rsplit("Question:", 1)[-1].lower()
        for key, reply in self.script.items():
            if key.lower() in question:
                return reply
        return dumb_reader(user) if self.default is None else self.default

    def _call(self, messages, *args, **kwargs):
        return self._reply(messages)

    def _stream(self, messages, *args, **kwargs):
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        yield ChatGenerationChunk(message=AIMessageChunk(content=self._reply(messages)))


def scripted_bot(corpus_dir, cache_dir, script=None, default=READ_NOTHING, verdict=YES, rewrites=None, **settings):
    """A real QABot over corpus_dir with the hashing embedder and a ScriptedLLM (bot.llm)."""
    from qa_bot.testing import HashEmbedder
    from qa_bot.pipeline import QABot

    s = Settings.from_env({}, corpus_dir=corpus_dir, cache_dir=cache_dir, **settings)
    return QABot(settings=s, llm=ScriptedLLM(script=dict(script or {}), default=default, verdict=verdict,
                                             rewrites=dict(rewrites or {})), embedder=HashEmbedder())


@dataclass(frozen=True)
class FakeSessionDocs:
    docs: tuple[tuple[str, str], ...] = ()  # (name, text); immutable like the real session index


@dataclass
class FakeBot:
    corpus_dir: Path | None = None
    delay: float = 0.0  # seconds per streamed piece, and 12 times that to "read" first (queueing is then observable)
    gate: threading.Event | None = None  # when set, ask() blocks until the event is set (queue tests)
    max_upload_bytes: int = 20_000
    settings: Settings = field(default_factory=Settings)
    calls: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # questions whose answer stream was closed unfinished

    def __post_init__(self):
        folder = Path(self.corpus_dir or self.settings.corpus_dir)
        self._corpus = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}
        self.settings = self.settings.replace(corpus_dir=folder, max_upload_bytes=self.max_upload_bytes)

    # --- the QABot interface ---------------------------------------------------------------------
    @property
    def refusal(self) -> str:
        return REFUSAL if len(self._corpus) <= 1 else REFUSAL_MANY

    def model_info(self) -> dict:
        return {"backend": "fake", "model": "FakeBot"}

    @property
    def titles(self) -> dict[str, str]:
        """As QABot.titles: the library's own rule (sidecar .meta.json, first line, file name)."""
        from qa_bot.ingest import Document, document_title

        return {n: document_title(Document(n, t, ""), self.settings.corpus_dir) for n, t in self._corpus.items()}

    def warm_up(self) -> "FakeBot":
        return self

    def retrieve(self, query: str, k: int | None = None, session=None, *, source: str | None = None,
                 since: str | None = None, until: str | None = None) -> list[Hit]:
        return self._retrieve(query, session, self._allowed(session, (source, since, until)))[: k or 3]

    def _allowed(self, session, filter_args) -> frozenset[str] | None:
        """QABot's filter and its errors; the fake corpus has no dates, so since/until match nothing."""
        names = [*self._corpus, *(n for n, _ in (session.docs if session else ()))]
        return allowed_sources(Filter.of(*filter_args), {n: Metadata() for n in names})

    def document_text(self, source: str, session: FakeSessionDocs | None = None) -> str:
        for name, text in (session.docs if session else ()):
            if name == source:
                return text
        if source in self._corpus:
            return self._corpus[source]
        raise CorpusError(f"no document named {source!r}")

    def add_document(self, session: FakeSessionDocs | None, name: str, data: bytes, progress=None) -> FakeSessionDocs:
        """As QABot's: the library's upload policy and ingest (so an HTML page is its extracted text), the
        document named SESSION_PREFIX + its file name."""
        from qa_bot.ingest import document_from_bytes
        from qa_bot.uploads import SESSION_PREFIX, check_upload

        name = check_upload(self.settings, name, len(data), self.session_documents(session))
        try:
            text = document_from_bytes(SESSION_PREFIX + name, data).text
        except CorpusError as exc:  # QABot's message: the file by its own name
            raise CorpusError(f"{name} cannot be added: {str(exc).removeprefix(SESSION_PREFIX + name + ': ')}") from None
        old = session.docs if session else ()
        source = SESSION_PREFIX + name
        return FakeSessionDocs(tuple((n, t) for n, t in old if n != source) + ((source, text),))

    def session_documents(self, session: FakeSessionDocs | None) -> list[str]:
        from qa_bot.uploads import SESSION_PREFIX

        return [n.removeprefix(SESSION_PREFIX) for n, _ in (session.docs if session else ())]

    def remove_document(self, session: FakeSessionDocs | None, name: str) -> FakeSessionDocs | None:
        from qa_bot.uploads import SESSION_PREFIX

        if name not in self.session_documents(session):
            raise CorpusError(f"{name} is not among this chat's added documents.")
        rest = tuple((n, t) for n, t in session.docs if n != SESSION_PREFIX + name)
        return FakeSessionDocs(rest) if rest else None

    def ask(self, question: str, *, history: Sequence[tuple[str, str]] = (), session=None,
            source: str | None = None, since: str | None = None, until: str | None = None) -> Answer:
        return self.ask_stream(question, history=history, session=session, source=source, since=since,
                               until=until).answer()

    def ask_stream(self, question: str, *, history: Sequence[tuple[str, str]] = (), session=None,
                   source: str | None = None, since: str | None = None, until: str | None = None) -> AnswerStream:
        return AnswerStream(self._closing(question, self._answer(question, history, session, (source, since, until))))

    def _closing(self, question: str, pieces: Iterator[str | Answer]) -> Iterator[str | Answer]:
        """Records (self.closed, and the log a served fake writes) an answer stream closed before its end, as
        a Stop must do: QABot's stream frees the model when closed."""
        try:
            yield from pieces
        except GeneratorExit:
            self.closed.append(question)
            logging.getLogger("fakes").info("answer stream closed early: %s", question)
            raise

    def _answer(self, question: str, history: Sequence[tuple[str, str]], session,
                filter_args=(None, None, None)) -> Iterator[str | Answer]:
        self.calls.append(question)
        allowed = self._allowed(session, filter_args)
        if self.gate is not None:
            self.gate.wait(30)
        question = clean_question(question, self.settings.max_question_chars)  # QABot's own check and errors
        if question == "__crash__":  # an unexpected bug: its details must never reach the user
            raise RuntimeError("internal detail /secret/path")
        if question == "__backend_down__":  # the LLM server is unreachable, before any text
            raise BackendError("cannot reach the language model server at http://10.0.0.9:8000/v1")
        if question == "__dies_midway__":  # the LLM server dies after a few verified words were streamed
            yield "Alibaba went "
            yield "public "
            raise BackendError("the language model server stopped mid-answer (http://10.0.0.9:8000/v1)")
        t0 = time.perf_counter()
        if re.match(r"(summari[sz]e|give me an overview)", question, re.I):  # QABot's overview: cited sentences
            yield from self._overview(question, session, allowed, t0)
            return
        standalone = None
        if history and re.search(r"\b(it|its|they|that)\b", question.lower()):
            standalone = f"{question} ({history[-1][0]})"
        hits = self._retrieve(standalone or question, session, allowed)
        t1 = time.perf_counter()
        best = hits[0] if hits else None
        evidence = tuple(h.chunk for h in hits)
        if best is None or best.score < 0.34:
            # No shared word at all: off topic, refused listing nothing (as QABot does below min_similarity);
            # some shared words: refused, listing the closest passages.
            off_topic = best is None or best.score == 0
            timings = {"retrieve": t1 - t0, "total": time.perf_counter() - t0}
            if not off_topic:
                timings.update(read=0.0, generate=0.0)
            yield self.refusal
            yield Answer(question, self.refusal, True, (), () if off_topic else tuple(hits), timings, standalone,
                         evidence=() if off_topic else evidence,
                         reason="nothing in the documents is near the question" if off_topic else "the reader found no answer")
            return
        yield Stage("reading", len(hits))  # progress, as QABot reports it
        if self.delay:
            time.sleep(8 * self.delay)  # the reader
        yield Stage("checking")
        if self.delay:
            time.sleep(4 * self.delay)  # the check
        c = best.chunk
        short = short_answer(standalone or question, c.text)
        text = f"{short} [1]"
        for piece in re.findall(r"\w+|\s+|[^\w\s]", text):  # "2014", " ", "[", "1", "]": streaming is observable
            if self.delay:
                time.sleep(self.delay)
            yield piece
        t2 = time.perf_counter()
        timings = {"retrieve": t1 - t0, "read": t2 - t1, "check": 0.0, "generate": t2 - t1, "total": t2 - t0}
        yield Answer(question, text, False, (Citation(1, c.source, c.start, c.end, c.text),), tuple(hits),
                     timings, standalone, read(short), evidence=evidence)

    def _overview(self, question: str, session, allowed, t0: float) -> Iterator[str | Answer]:
        """The first three sentences of the first document, each cited, on one line (QABot's overview of one
        document: its lead sentence and two more, [1] [2] [3])."""
        docs = [(n, t) for n, t in list(self._corpus.items()) + list(session.docs if session else ())
                if allowed is None or n in allowed]
        name, text = docs[0]
        found = list(re.finditer(r"\S.*?(?:[.!?](?=\s|$)|\Z)", text, re.S))[:3]
        cites = tuple(Citation(i, name, m.start(), m.end(), m.group()) for i, m in enumerate(found, 1))
        body = " ".join(f"{c.text} [{c.n}]" for c in cites)
        yield body
        yield Answer(question, body, False, cites, (), {"summary": time.perf_counter() - t0})

    def close(self) -> None:
        pass

    # --- helpers -----------------------------------------------------------------------------------
    def _retrieve(self, question: str, session, allowed: frozenset[str] | None = None) -> list[Hit]:
        q = _words(question)
        if not q:
            return []
        docs = [(n, t) for n, t in list(self._corpus.items()) + list(session.docs if session else ())
                if allowed is None or n in allowed]
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
    """Poll the app's /config until it answers; returns the seconds waited. Fails fast if the process died.
    The deadline is at least QA_BOT_TEST_START_SECONDS (default 300): starting a server is not what these tests
    time, and on a busy machine importing Gradio alone can take a minute."""
    import urllib.request

    timeout = max(timeout, float(os.environ.get("QA_BOT_TEST_START_SECONDS", "300")))
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

    from conftest import TEST_LLM_TIMEOUT

    # An app on the real reader gets the tests' reader deadline (a busy machine's answer takes minutes), unless the
    # caller or the environment sets one.
    full_env = {"QA_BOT_LLM_TIMEOUT": str(TEST_LLM_TIMEOUT), **os.environ, "GRADIO_ANALYTICS_ENABLED": "False",
                **(env or {})}
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

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: this checkout's qa_bot
    from qa_bot.ui import build_app, launch

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.03)
    ap.add_argument("--queue-size", type=int, default=8)
    ap.add_argument("--upload-bytes", type=int, default=20_000)
    a = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch(build_app(FakeBot(delay=a.delay, max_upload_bytes=a.upload_bytes, settings=Settings.from_env()),
                     queue_size=a.queue_size),
           host="127.0.0.1", port=a.port)
