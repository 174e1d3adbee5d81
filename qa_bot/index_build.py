"""Index build: embed a corpus's chunks into vectors, reusing the vectors of unchanged chunk texts, step by step
with progress reports (IndexProgress), from a list of chunks or from documents as they are still being read.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Literal

import numpy as np

from .index import Embedder
from .ingest import Document, chunk_documents
from .types import Chunk


def load_model(embedder: Embedder) -> None:
    """Load the model that embed() uses (its own load() where it has one: SentenceTransformerEmbedder's dim no
    longer needs the torch model), so that timing the embedding leaves the start-up out."""
    own = getattr(embedder, "load", None)
    if own is not None:
        own()
    else:
        _ = embedder.dim  # a plain Embedder loads its model to report it


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


EMBED_STEP = 256  # chunks per embed call: progress reports this often; big enough not to cost speed


@dataclass(frozen=True)
class IndexProgress:
    """Where an index build is: passed to progress(p) after each step. `done`/`total` are chunks to embed (total
    estimated from the documents read so far while some are still being read: `estimated`); documents count as
    done when every chunk of theirs is embedded or reused."""

    done: int
    total: int
    docs_done: int = 0
    docs_total: int = 0
    reused: int = 0
    seconds: float = 0.0
    estimated: bool = False

    @property
    def chunks_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def docs_per_s(self) -> float:
        return self.docs_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None before there is a rate."""
        if self.done >= self.total and not self.estimated:
            return 0.0
        rate = self.chunks_per_s
        return max(0.0, (self.total - self.done) / rate) if rate > 0 else None

    def as_dict(self) -> dict:
        return {"chunks_done": self.done, "chunks_total": self.total, "chunks_total_estimated": self.estimated,
                "reused": self.reused, "docs_done": self.docs_done, "docs_total": self.docs_total,
                "seconds": round(self.seconds, 2), "chunks_per_s": round(self.chunks_per_s, 1),
                "docs_per_s": round(self.docs_per_s, 2),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1)}


Progress = Callable[[IndexProgress], None]


def build_vectors(chunks: list[Chunk], embedder: Embedder, reuse: dict[str, np.ndarray],
                  progress: Progress | None = None, n_docs: int = 0) -> tuple[np.ndarray, int]:
    """Embed the chunks whose text is not in `reuse`; returns (vectors, how many were embedded).
    progress(IndexProgress) after each step of EMBED_STEP chunks."""
    t0 = time.perf_counter()
    vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    todo = []
    for i, c in enumerate(chunks):
        v = reuse.get(text_key(c.text))
        if v is not None and v.shape == (embedder.dim,):
            vectors[i] = v
        else:
            todo.append(i)
    # Shortest first: each batch pads to its longest text, so similar lengths together embed faster.
    todo.sort(key=lambda i: len(chunks[i].text))

    def report(done: int) -> None:
        if progress is not None:
            progress(IndexProgress(done, len(todo), n_docs if done == len(todo) else 0, n_docs,
                                   len(chunks) - len(todo), time.perf_counter() - t0))

    if progress is not None and todo:
        report(0)  # a bar from the start, so its rate and ETA cover the whole run
    for s in range(0, len(todo), EMBED_STEP):
        part = todo[s:s + EMBED_STEP]
        vectors[part] = embedder.embed([chunks[i].text for i in part])
        _trim_heap()
        if progress is not None:
            report(s + len(part))
    return vectors, len(todo)


def stream_vectors(docs: Iterable[Document], embedder: Embedder, reuse: dict[str, np.ndarray], *, chunk_chars: int,
                   chunk_max_tokens: int, docs_total: int = 0, progress: Progress | None = None):
    """Chunk and embed documents as they arrive (a CorpusStream extracts the next ones in worker processes
    meanwhile): every EMBED_STEP chunks that need embedding are embedded, shortest first, while later documents are
    still being read. Returns (documents, chunks, vectors, n_embedded, embed_s): the same chunks and vectors, in
    the same order, as chunking all the documents first and build_vectors after."""
    t0 = time.perf_counter()
    dim = embedder.dim
    docs_seen: list[Document] = []
    chunks: list[Chunk] = []
    vectors = np.zeros((max(EMBED_STEP, 1024), dim), dtype=np.float32)
    pending: list[int] = []  # chunk rows still to embed
    doc_ends: list[int] = []  # rows after each document: a document is done when every row before its end is
    n_embedded = reused = 0
    embed_s = 0.0

    def flush(final: bool) -> None:
        """Embed every pending chunk (at least EMBED_STEP of them, or the last) in one call, shortest first: a
        remainder split off into a call of its own would make a batch of a few chunks."""
        nonlocal n_embedded, embed_s
        if not pending:
            return
        part = sorted(pending, key=lambda i: len(chunks[i].text))  # similar lengths pad less
        pending.clear()
        t = time.perf_counter()
        vectors[part] = embedder.embed([chunks[i].text for i in part])
        embed_s += time.perf_counter() - t
        n_embedded += len(part)
        _trim_heap()
        report(final)

    def report(last: bool) -> None:
        if progress is None:
            return
        first_pending = min(pending) if pending else len(chunks)
        done_docs = sum(1 for end in doc_ends if end <= first_pending) if pending else len(doc_ends)
        seen = len(docs_seen)
        to_embed = n_embedded + len(pending)
        estimated = seen < docs_total and not last
        total = round(to_embed * docs_total / seen) if estimated and seen else to_embed
        # at the end the documents read are the total: files that turned out unusable are not waited for
        progress(IndexProgress(n_embedded, max(total, n_embedded), done_docs, seen if last else max(docs_total, seen),
                               reused, time.perf_counter() - t0, estimated))

    if progress is not None:
        report(False)
    for doc in docs:
        docs_seen.append(doc)
        for c in chunk_documents([doc], max_chars=chunk_chars, max_tokens=chunk_max_tokens,
                                 count_tokens=embedder.count_tokens):
            row = len(chunks)
            chunks.append(c)
            if row == len(vectors):  # grow by half: amortised copies, at most a third unused
                vectors = np.concatenate([vectors, np.zeros((len(vectors) // 2, dim), dtype=np.float32)])
            v = reuse.get(text_key(c.text))
            if v is not None and v.shape == (dim,):
                vectors[row] = v
                reused += 1
            else:
                pending.append(row)
        doc_ends.append(len(chunks))
        if len(pending) >= EMBED_STEP:
            flush(False)
    if pending:
        flush(True)
    elif progress is not None:  # nothing left to embed: still one final report, with the true totals
        report(True)
    return docs_seen, chunks, np.ascontiguousarray(vectors[:len(chunks)]), n_embedded, embed_s


def _trim_heap() -> None:
    """Give the C heap's free pages back to the OS (glibc malloc_trim). torch's worker threads allocate each
    step's activations in their own malloc arenas, which glibc keeps after they are freed and the main thread
    cannot reuse: trimmed after each step, a 2,466-chunk build ends embedding ~100 MB lower (553 against 660 MB,
    benchmarks/index_memory.py), room the FAISS index and the write then use. A no-op where there is no glibc."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Callable[[int], object] | Literal[False] | None = None  # glibc's malloc_trim, looked up once; False where there is none
