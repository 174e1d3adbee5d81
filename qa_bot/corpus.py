"""The corpus as the bot answers from it: its documents (read once, with metadata and titles), the ones kept out
of answers, their index and retriever, and a swap to a changed folder between two answers."""
from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from functools import cached_property

from .errors import CorpusError
from .filters import Filter, allowed_sources
from .index import MemoryIndex, DenseIndex
from .ingest import Document, Metadata, chunk_documents, document_title, instructions_to_assistant, load_corpus, title_from_name
from .ocr import OcrOptions
from .retrieve import DocumentInfo, Retriever
from .settings import Settings
from .types import Hit

log = logging.getLogger("qa_bot")


class Corpus:
    """The documents of settings.corpus_dir, loaded, indexed and ranked lazily (each on first use)."""

    def __init__(self, settings: Settings, embedder=None, lock: threading.Lock | None = None):
        """embedder: one built by the caller (tests), else settings' (embedders.make_embedder). lock: held by the
        caller while it answers; a reload swaps the corpus in under it, between two answers."""
        self.settings = settings
        self._embedder_override = embedder
        self._lock = lock or threading.Lock()
        self.skipped: list = []  # corpus files that could not be used, with reasons
        self.ocr = OcrOptions.from_settings(settings)  # how scanned PDF pages are read (corpus and uploads)
        self.version = 0  # how many times reload() has swapped in a changed corpus

    @cached_property
    def embedder(self):
        if self._embedder_override is not None:
            return self._embedder_override
        from .embedders import make_embedder

        return make_embedder(self.settings)

    @cached_property
    def documents(self) -> dict[str, Document]:
        docs, self.skipped = load_corpus(self.settings.corpus_dir, self.settings.max_file_bytes,
                                         self.settings.corpus_limits, ocr=self.ocr)
        return {d.source: d for d in docs}

    @cached_property
    def titles(self) -> dict[str, str]:
        """Each corpus document's title (ingest.document_title)."""
        return {source: document_title(doc) for source, doc in self.documents.items()}

    @cached_property
    def metadata(self) -> dict[str, Metadata]:
        """Each corpus document's metadata (title, date, author, url, publisher), as filters see it."""
        return {source: doc.meta for source, doc in self.documents.items()}

    def catalog(self) -> list[dict]:
        """The documents with their metadata and chunk counts (as the index chunks them), for `qa-bot docs`."""
        s = self.settings
        docs = list(self.documents.values())
        counts: dict[str, int] = {}
        for c in chunk_documents(docs, max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                                 count_tokens=self.embedder.count_tokens):
            counts[c.source] = counts.get(c.source, 0) + 1
        return [{"source": d.source, "title": self.titles[d.source], "date": d.meta.date, "author": d.meta.author,
                 "url": d.meta.url, "publisher": d.meta.publisher, "pages": len(d.pages) or None,
                 "chars": len(d.text), "chunks": counts.get(d.source, 0)} for d in docs]

    @cached_property
    def quarantined(self) -> dict[str, str]:
        """Documents kept out of answers because they address instructions to an AI assistant, with the passage
        that does (settings.quarantine_injections); each named in one warning."""
        return self._quarantine(self.documents)

    def _quarantine(self, documents: dict[str, Document], known: Collection[str] = ()) -> dict[str, str]:
        """quarantined for these documents; each named in a warning unless it is among `known` (already named)."""
        if not self.settings.quarantine_injections:
            return {}
        out = {}
        for source, doc in documents.items():
            if found := instructions_to_assistant(doc.text):
                out[source] = found
                if source not in known:
                    log.warning("%s gives an AI assistant instructions (%r): kept out of answers "
                                "(QA_BOT_QUARANTINE_INJECTIONS=0 to use it)", source, found[:80])
        return out

    @cached_property
    def index(self) -> DenseIndex:
        return self._load_index(force=False)

    def _load_index(self, force: bool, progress=None, documents=None) -> DenseIndex:
        """The index of `documents` (by default the corpus's): a dict by source, or a CorpusStream still being read."""
        from . import ann

        ann.configure_threads(1)  # one search thread: 2 cores are shared with torch and llama.cpp
        from .vectordb import open_index

        docs = documents if documents is not None else self.documents
        docs = list(docs.values()) if isinstance(docs, dict) else docs
        return open_index(self.settings, docs, self.embedder, force=force, progress=progress)

    @cached_property
    def retriever(self) -> Retriever:
        return self._retriever_of(self.index, self.documents, self.titles, self.metadata)

    def _retriever_of(self, index, documents: dict[str, Document], titles: dict[str, str],
                      metadata: dict[str, Metadata]) -> Retriever:
        s = self.settings
        info = DocumentInfo(lambda src: documents[src].text, lambda src: titles.get(src) or title_from_name(src),
                            lambda src: metadata[src].date if src in metadata else "",
                            lambda src: metadata[src].names() if src in metadata else "",
                            lambda src: documents[src].structure)
        return Retriever(index, self.embedder, info, top_k=s.top_k, candidates=s.rerank_candidates,
                         sentence_lexical_weight=s.sentence_lexical_weight, keep=s.fusion_keep)

    def build_index(self, force: bool = True, progress=None) -> DenseIndex:
        """(Re)build the index now; force=True re-chunks and rebuilds even when the cache is valid.
        progress(IndexProgress) as chunks are embedded. Forced, with the documents not yet read, they are read
        (HTML and PDF in worker processes) while the ones already read are chunked and embedded."""
        self.__dict__.pop("retriever", None)
        if force and "documents" not in self.__dict__:
            from .ingest import CorpusStream

            s = self.settings
            stream = CorpusStream(s.corpus_dir, s.max_file_bytes, None, s.corpus_limits, ocr=self.ocr)
            try:
                self.index = self._load_index(force=True, progress=progress, documents=stream)
            finally:
                self.skipped = stream.skipped
            self.documents = {d.source: d for d in stream.documents}
            return self.index
        self.index = self._load_index(force=force, progress=progress)
        return self.index

    def reload(self, documents: Sequence[Document], skipped: Sequence = (), progress=None) -> DenseIndex:
        """Answer from these documents from now on (watch.py: the corpus folder changed). Their index is brought up
        to date through the incremental path (open_index: unchanged chunk texts keep their vectors, only new text
        is embedded, and the new version replaces the old atomically on disk) and their retriever is built while
        questions go on being answered from the old ones; then everything is swapped in at once, between two
        answers. Returns the new index."""
        # The old index and retriever first, if a warm-up is loading them now: a cached_property that finished after
        # the swap below would put the old ones back (on Python 3.11 this waits for that load to end).
        _ = self.retriever
        docs = {d.source: d for d in documents}
        titles = {src: document_title(doc) for src, doc in docs.items()}
        metadata = {src: doc.meta for src, doc in docs.items()}
        quarantined = self._quarantine(docs, known=self.__dict__.get("quarantined", {}))
        index = self._load_index(force=False, progress=progress, documents=docs)
        retriever = self._retriever_of(index, docs, titles, metadata)
        _ = retriever.bm25  # built here, not by the first question after the swap
        with self._lock:
            self.__dict__.update(documents=docs, titles=titles, metadata=metadata, quarantined=quarantined,
                                 index=index, retriever=retriever)
            self.skipped = list(skipped)
            self.version += 1
        return index

    def loaded(self, name: str):
        """A part already loaded (documents, index, ...), or None: for reports that must load nothing."""
        return self.__dict__.get(name)

    # --- what a question reads --------------------------------------------------------------------------
    def allowed(self, flt: Filter, session: MemoryIndex | None = None) -> frozenset[str] | None:
        """The documents a filter lets through (filters.allowed_sources over the corpus and a chat's added
        documents, which have no date); None for no filter."""
        if not flt:
            return None
        metadata = {**self.metadata, **{src: Metadata() for src in (session.texts if session is not None else ())}}
        return allowed_sources(flt, metadata)

    def search(self, query: str, session: MemoryIndex | None, k: int | None = None,
               sources: frozenset[str] | None = None) -> list[Hit]:
        """Hybrid search, the quarantined documents' chunks left out (ranked as always, then dropped); with
        `sources` (a filter's allowed documents), only those documents are searched."""
        if sources is not None:
            return self.retriever.search(query, session, k, sources - self.quarantined.keys())
        if not self.quarantined:
            return self.retriever.search(query, session, k)
        k = k or self.settings.top_k
        ranked = self.retriever.search(query, session, max(k, self.settings.rerank_candidates))
        return [h for h in ranked if h.chunk.source not in self.quarantined][:k]

    def text(self, source: str, session: MemoryIndex | None = None) -> str:
        """A document's text, a chat's added ones first; CorpusError for a name that is neither."""
        if session is not None and source in session.texts:
            return session.texts[source]
        doc = self.documents.get(source)
        if doc is None:
            raise CorpusError(f"no document named {source!r}")
        return doc.text

    def document(self, source: str, session: MemoryIndex | None = None) -> Document | None:
        return self.documents.get(source) or (session.documents.get(source) if session is not None else None)
