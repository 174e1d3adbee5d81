"""Index types: the FAISS-backed VectorIndex of a corpus and the in-memory MemoryIndex of a chat session's uploads,
each searched by a query vector (optionally restricted to some documents), the Embedder protocol they are built
and queried with, and the DenseIndex protocol the retriever searches (VectorIndex, vectordb.MilvusIndex). Building
one: index_build.py; keeping it on disk: index_store.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from . import ann
from .ingest import Document
from .types import Chunk, Hit


class Embedder(Protocol):
    name: str

    # Read-only: the embedders compute them once, as cached properties; a plain member would ask for settable ones.
    @property
    def fingerprint(self) -> str: ...
    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...
    def count_tokens(self, text: str) -> int: ...


def embed_query(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Question-time embedding (the question, candidate sentences): the embedder's own embed_query where it
    has one (SentenceTransformerEmbedder's avoids loading torch), else embed(). Optional, as in LangChain's
    Embeddings, so any object with embed() still serves."""
    own = getattr(embedder, "embed_query", None)
    return own(texts) if own is not None else embedder.embed(texts)


class DenseIndex(Protocol):
    """What the retriever needs from an index: its chunks (row i is chunks[i], for BM25) and a dense search
    restricted, when sources is given, to chunks of those documents."""

    info: dict

    @property  # read-only: then an index may hold them in a list, a tuple or any sequence (a plain member would
    # have to be declared Sequence exactly, in every index class)
    def chunks(self) -> Sequence[Chunk]: ...

    def search(self, query_vec: np.ndarray, k: int, sources: frozenset[str] | None = None) -> list[Hit]: ...


@dataclass
class VectorIndex:
    """Chunks and their FAISS index; row i of the index is chunks[i]."""

    chunks: list[Chunk]
    faiss_index: object
    info: dict = field(default_factory=dict)  # manifest, plus how it was obtained ("loaded"/"built")

    def search(self, query_vec: np.ndarray, k: int, sources: frozenset[str] | None = None) -> list[Hit]:
        """The k nearest chunks; with `sources`, only chunks of those documents (filters.allowed_sources)."""
        if not self.chunks:
            return []
        if sources is None:
            scores, ids = ann.search(self.faiss_index, query_vec.reshape(1, -1), k)
            return [Hit(self.chunks[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
        return restricted_search(self.chunks, lambda n: ann.search(self.faiss_index, query_vec.reshape(1, -1), n),
                                 k, sources)


def restricted_search(chunks: Sequence[Chunk], search, k: int, sources: frozenset[str]) -> list[Hit]:
    """The k best hits among chunks of `sources`: search(n) -> (scores, ids) is asked for 4x more each round
    until k allowed hits are found or the whole index was ranked (a filter to a few documents of a large archive
    ranks more; exact and simple, with no second index per filter)."""
    allowed = sum(1 for c in chunks if c.source in sources)
    if not allowed:
        return []
    n = max(k, 1) * 4
    while True:
        scores, ids = search(min(n, len(chunks)))
        hits = [Hit(chunks[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0 and chunks[i].source in sources]
        if len(hits) >= min(k, allowed) or n >= len(chunks):
            return hits[:k]
        n *= 4


class MemoryIndex:
    """Small in-memory index (exact cosine) for documents added in one chat session. Immutable."""

    def __init__(self, chunks: tuple[Chunk, ...] = (), vectors: np.ndarray | None = None, texts=None, documents=None):
        self.chunks = tuple(chunks)
        self.vectors = vectors if vectors is not None else np.zeros((0, 1), dtype=np.float32)
        self.texts: dict[str, str] = dict(texts or {})  # source -> full text
        self.documents: dict[str, Document] = dict(documents or {})  # source -> Document (metadata, PDF pages)

    def search(self, query_vec: np.ndarray, k: int, sources: frozenset[str] | None = None) -> list[Hit]:
        if not self.chunks:
            return []
        scores = self.vectors @ query_vec.reshape(-1)
        order = [i for i in np.argsort(-scores) if sources is None or self.chunks[i].source in sources][:k]
        return [Hit(self.chunks[i], float(scores[i])) for i in order]

    def without(self, source: str) -> "MemoryIndex":
        """This index less the document `source` (unchanged when it holds no such document)."""
        keep = [i for i, c in enumerate(self.chunks) if c.source != source]
        return MemoryIndex(tuple(self.chunks[i] for i in keep), self.vectors[keep] if keep else None,
                           {k: v for k, v in self.texts.items() if k != source},
                           {k: v for k, v in self.documents.items() if k != source})

    def with_document(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray) -> "MemoryIndex":
        # Re-adding a document of the same name replaces it.
        keep = [i for i, c in enumerate(self.chunks) if c.source != doc.source]
        old = self.vectors[keep] if keep else np.zeros((0, vectors.shape[1]), dtype=np.float32)
        return MemoryIndex(
            tuple(self.chunks[i] for i in keep) + tuple(chunks),
            np.vstack([old, vectors]) if len(old) else vectors,
            {**self.texts, doc.source: doc.text},
            {**self.documents, doc.source: doc},
        )
