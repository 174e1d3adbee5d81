"""Documents a chat adds for itself: the upload policy, and embedding them in the gaps between questions.

A chat's documents live in its session (index.MemoryIndex, immutable: each change makes a new one), never in the
corpus; their sources are named SESSION_PREFIX + the file's base name.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import numpy as np

from .errors import CorpusError
from .index import Embedder, MemoryIndex
from .ingest import DOC_SUFFIXES, chunk_text, document_from_bytes, instructions_to_assistant
from .ocr import OcrOptions
from .settings import Settings

SESSION_PREFIX = "session/"  # sources of documents added in a chat session; never clash with corpus names
UPLOAD_YIELD_SECONDS = 30.0  # longest an upload's next batch waits for questions to finish


def check_upload(settings: Settings, name: str, size: int, session_names: Collection[str] = ()) -> str:
    """The upload policy, in one place: the document's base name when a document called `name` of `size`
    bytes may be added to a session already holding documents called `session_names` (adding one of those
    again replaces it); else CorpusError saying why. The web upload route runs it before a byte is stored."""
    base = Path(str(name)).name or "document.txt"
    session_documents = len(session_names)
    if Path(base).suffix.lower() not in DOC_SUFFIXES:
        raise CorpusError(f"{base} cannot be added: only {', '.join(DOC_SUFFIXES)} documents can be.")
    if size > settings.max_upload_bytes:
        raise CorpusError(f"{base} is too large ({human_size(size)}); a document can be at most {human_size(settings.max_upload_bytes)}.")
    if session_documents >= settings.max_session_documents and base not in session_names:
        raise CorpusError(f"This chat already has {session_documents} added documents, the most it can hold; "
                          "start a new chat (reload the page) to add others.")
    return base


def human_size(n: int) -> str:
    """Bytes for people: '1 MB', '3.2 MB', '900 KB'."""
    return f"{n / 1024:,.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB".replace(".0 MB", " MB")


def session_names(session: MemoryIndex | None) -> list[str]:
    """The names of the documents added to a session, in the order they were added."""
    return [src.removeprefix(SESSION_PREFIX) for src in (session.texts if session is not None else ())]


def remove(session: MemoryIndex | None, name: str) -> MemoryIndex | None:
    """A new session without the added document `name` (None when none is left); CorpusError when the
    session has no document of that name."""
    if session is None or name not in session_names(session):
        raise CorpusError(f"{name} is not among this chat's added documents.")
    rest = session.without(SESSION_PREFIX + name)
    return rest if rest.texts else None


class Uploads:
    """Adds documents to sessions, embedding only while no question is being answered, so that a large document
    never sits between a user and their answer."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder], ocr: OcrOptions):
        """embedder: returns the embedder (built on first use, by the corpus)."""
        self.settings = settings
        self._embedder = embedder
        self.ocr = ocr
        self._answering = 0  # questions in flight (waiting for the answer lock or answering)
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def question(self) -> Iterator[None]:
        """Counts a question in flight while the block runs."""
        with self._idle:
            self._answering += 1
        try:
            yield
        finally:
            with self._idle:
                self._answering -= 1
                self._idle.notify_all()

    def _questions_done(self, timeout: float) -> None:
        """Wait until no question is being answered (at most `timeout` seconds, so a steady stream of
        questions slows uploads down but never stops them)."""
        with self._idle:
            self._idle.wait_for(lambda: self._answering == 0, timeout=timeout)

    def add(self, session: MemoryIndex | None, name: str, data: bytes,
            progress: Callable[[int, int], None] | None = None) -> MemoryIndex:
        """A new session index with this document added (kept in memory, for that session only). Embedding runs
        in batches in the gaps between questions; progress(done, total) is called after each batch. Raises
        CorpusError for a document the upload policy (check_upload) or ingest refuses."""
        s = self.settings
        base = check_upload(s, name, len(data), session_names(session))
        try:
            doc = document_from_bytes(SESSION_PREFIX + base, data, limits=s.upload_limits, ocr=self.ocr)  # in a child process
        except CorpusError as exc:  # ingest names the internal source; the user knows the file by its own name
            raise CorpusError(f"{base} cannot be added: {str(exc).removeprefix(SESSION_PREFIX + base + ': ')}") from None
        if s.quarantine_injections and (found := instructions_to_assistant(doc.text)):
            raise CorpusError(f"{base}: gives an AI assistant instructions ({found[:80]!r}), so it was not added")
        embedder = self._embedder()
        chunks = chunk_text(doc.text, doc.source, max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                            count_tokens=embedder.count_tokens)
        # Batches of similar length pad less (as sentence-transformers sorts within one call); order restored below.
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].text))
        step, parts = max(1, s.embed_batch_size), []
        for i in range(0, len(order), step):
            self._questions_done(UPLOAD_YIELD_SECONDS)
            parts.append(embedder.embed([chunks[j].text for j in order[i:i + step]]))
            if progress is not None:
                progress(min(i + step, len(order)), len(order))
        vectors = np.empty((len(order), parts[0].shape[1]), dtype=np.float32) if parts else embedder.embed([])
        if parts:
            vectors[order] = np.vstack(parts)
        return (session or MemoryIndex()).with_document(doc, chunks, vectors)
