"""Retrieve stage: rank passages for a question (BM25 fused with dense search) and pick the few sentences
the reader will see.

Why hybrid: dense search alone finds the right topic in the wrong document of an archive ("which release
added X" lands on a neighbouring release); BM25 over the text plus each document's title and section
heading brings back exact names and version numbers. The two ranked lists are fused by reciprocal rank
(RRF), which needs no score calibration between them.

Why sentences: prompt reading dominates on 2 cores (~10 ms a token for a 1.5B model), so the reader gets
a handful of sentences, not four 400-character chunks, and each citation is one exact sentence.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Sequence

from . import cite
from .cite import previous_sentence_start, sentence_spans
from .index import MemoryIndex, DenseIndex, embed_query
from .structure import MARKUP, RELEASE, Structure, release_first
from .types import Chunk, Hit, Sentence

if TYPE_CHECKING:
    from .ingest import Document

# Bounds on memory and start-up time, and a textbook constant: not Settings fields, because none changes
# which passages rank first (the ranking's knobs are Settings.top_k, rerank_candidates, fusion_keep, sentence_lexical_weight).
SENTENCE_CACHE = 50000  # sentence vectors kept (384 floats each: ~77 MB at most)
IDF_SAMPLE = 20000  # IDF from at most this many chunks: bounded start-up on a huge archive
RRF_K = 60  # the usual reciprocal-rank-fusion constant: rank r counts 1 / (60 + r)


def lexical_terms(text: str) -> list[str]:
    """BM25 tokens: stemmed content words and canonical numbers ("six" -> "6", "5.2" stays "5.2")."""
    out = []
    for raw in cite.WORD.findall(cite.normalize(text)):
        low = raw.lower().strip("'’-")
        if not low or low in cite.STOPWORDS:
            continue
        out.append(cite.stem(low))
    out.extend(sorted(cite.numbers(text)))
    return out


_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December")


def date_words(iso: str) -> str:
    """A yyyy-mm-dd date as the words a question uses for it: "2023-05-12" -> "2023-05-12 12 May 2023"."""
    try:
        y, m, d = iso.split("-")
        return f"{iso} {int(d)} {_MONTH_NAMES[int(m) - 1]} {y}"
    except (ValueError, IndexError):
        return ""


class DocumentInfo:
    """Titles, metadata and structure (structure.Structure: section headings) of the corpus's documents, looked
    up by source. structure_of gives a document's stored structure (ingest.Document.structure); without it, a
    document's structure is found from its text the first time it is asked for, and kept."""

    def __init__(self, text_of: Callable[[str], str], title_of: Callable[[str], str],
                 date_of: Callable[[str], str] = lambda source: "", about_of: Callable[[str], str] = lambda source: "",
                 structure_of: Callable[[str], Structure] | None = None):
        self._text_of, self._title_of, self._date_of, self._about_of = text_of, title_of, date_of, about_of
        self._structure_of = structure_of
        self._structures: dict[str, Structure] = {}
        self._lock = threading.Lock()

    def text(self, source: str) -> str:
        return self._text_of(source)

    def title(self, source: str) -> str:
        return self._title_of(source)

    def date(self, source: str) -> str:
        """The document's publication date (yyyy-mm-dd), or ""."""
        return self._date_of(source)

    def about(self, source: str) -> str:
        """What the document's metadata states (formats.Metadata.names), or ""."""
        return self._about_of(source)

    def structure(self, source: str) -> Structure:
        if self._structure_of is not None:
            return self._structure_of(source)
        with self._lock:
            if source not in self._structures:
                self._structures[source] = Structure.of(self._text_of(source))
            return self._structures[source]

    def heading_spans(self, source: str, offset: int, structure: Structure | None = None) -> tuple[tuple[int, int], ...]:
        """The headings above offset that name its section (Structure.headings_at). `structure`: that of a
        document added in a chat session, not the corpus's."""
        return (structure or self.structure(source)).headings_at(offset)

    def label(self, source: str, offset: int, text: str | None = None,
              structure: Structure | None = None) -> tuple[str, tuple[tuple[int, int], ...]]:
        """"title — heading(s)" for a sentence at offset, and the headings' spans. With `text` and its `structure`
        (a document added in a chat session) the corpus's are not looked up."""
        spans = self.heading_spans(source, offset, structure if text is not None else None)
        doc = text if text is not None else self._text_of(source) if spans else ""
        title = self.title(source)
        parts = [title] if title else []
        for a, b in spans:
            h = " ".join(doc[a:b].split())
            if h.lower() not in title.lower():
                parts.append(release_first(h))
        return " — ".join(parts), spans


def paginate(ranked: Sequence[Sentence], n: int, max_chars: int | None, pages: int) -> list[list[Sentence]]:
    """Ranked sentences cut into `pages` successive pages, each of at most n sentences and at most max_chars
    characters (but never fewer than two, when there are two left): a page ends where the next sentence would
    pass either bound, and the next page starts with that sentence."""
    out: list[list[Sentence]] = []
    i = 0
    for _ in range(pages):
        page: list[Sentence] = []
        used = 0
        for x in ranked[i:i + n]:
            if max_chars is not None and len(page) >= 2 and used + len(x.text) > max_chars:
                break
            page.append(x)
            used += len(x.text)
        out.append(page)
        i += len(page)
    return out


def fuse(dense: Sequence[Chunk], lexical: Sequence[Chunk], k: int, keep: int = 0) -> list[Hit]:
    """The k best chunks by reciprocal-rank fusion of two rankings (Hit.score: the fused score, best first),
    always including the first `keep` of each ranking: RRF alone ranks a chunk that one side puts first
    (1/61) below any chunk both sides put 30th (2/90)."""
    fused: dict[str, float] = {}
    by_id: dict[str, Chunk] = {}
    for ranking in (dense, lexical):
        for rank, c in enumerate(ranking):
            fused[c.id] = fused.get(c.id, 0.0) + 1.0 / (RRF_K + rank + 1)
            by_id[c.id] = c
    order = sorted(fused, key=lambda cid: -fused[cid])
    kept = {c.id for c in (*dense[:keep], *lexical[:keep])}
    chosen = [cid for cid in order if cid in kept][:k]
    chosen += [cid for cid in order if cid not in kept][:max(0, k - len(chosen))]
    return [Hit(by_id[cid], fused[cid]) for cid in sorted(chosen, key=lambda cid: -fused[cid])]


def _own_structure(texts: dict[str, str], documents: dict[str, Document], source: str) -> Structure:
    """The structure of a document added in a chat session: its Document's (ingest.Document.structure), or when
    the session kept only its text (MemoryIndex.without keeps no Documents), found from the text."""
    doc = documents.get(source)
    return doc.structure if doc is not None and doc.text == texts[source] else Structure.of(texts[source])


class Retriever:
    def __init__(self, index: DenseIndex, embedder, docs: DocumentInfo, *, top_k: int, candidates: int = 30,
                 sentence_lexical_weight: float = 0.3, keep: int = 0):
        self.index = index
        self.embedder = embedder
        self.docs = docs
        self.top_k = top_k
        self.candidates = candidates
        self.keep = keep
        self.sentence_lexical_weight = sentence_lexical_weight
        self._lock = threading.Lock()
        self._bm25 = None
        self._idf: tuple[dict[str, float], float] | None = None
        self._sent_cache: dict = {}
        self._last_query: tuple[str, object] | None = None

    # --- lexical side ---------------------------------------------------------------------------------
    def _chunk_terms(self, chunk: Chunk) -> list[str]:
        # The title, heading and publication date are searchable with the text ("the May 2023 article").
        when = date_words(self.docs.date(chunk.source))
        return lexical_terms(f"{self.docs.label(chunk.source, chunk.start)[0]}\n{when}\n{chunk.text}")

    @property
    def bm25(self):
        """BM25 over every chunk with its document's title and section heading (built once, in memory:
        ~1 s for 5,000 chunks)."""
        with self._lock:
            if self._bm25 is None:
                import logging

                import bm25s

                # bm25s sets its own logger to DEBUG, so "Building index from tokens" reached the CLI's stderr.
                logging.getLogger("bm25s").setLevel(logging.WARNING)
                model = bm25s.BM25()
                corpus = [self._chunk_terms(c) or ["_"] for c in self.index.chunks]
                if corpus:
                    model.index(corpus, show_progress=False)
                self._bm25 = model
            return self._bm25

    def _lexical(self, query: str, n: int, sources: frozenset[str] | None = None) -> list[int]:
        terms = lexical_terms(query)
        if not terms or not self.index.chunks:
            return []
        model = self.bm25
        vocab = model.vocab_dict if hasattr(model, "vocab_dict") else {}
        terms = [t for t in terms if t in vocab] if vocab else terms
        if not terms:
            return []
        mask = None
        if sources is not None:  # chunks of other documents score 0 and are dropped below
            import numpy as np

            mask = np.fromiter((c.source in sources for c in self.index.chunks), dtype=np.float32,
                               count=len(self.index.chunks))
            if not mask.any():
                return []
        ids, scores = model.retrieve([terms], k=min(n, len(self.index.chunks)), show_progress=False, weight_mask=mask)
        return [int(i) for i, s in zip(ids[0], scores[0]) if s > 0]

    # --- dense side -------------------------------------------------------------------------------------
    def query_vector(self, query: str):
        """The question's embedding; search() and sentences() ask for the same one in turn."""
        with self._lock:
            if self._last_query and self._last_query[0] == query:
                return self._last_query[1]
        vec = embed_query(self.embedder, [query])[0]
        with self._lock:
            self._last_query = (query, vec)
        return vec

    def _sentence_vectors(self, texts: list[str]):
        """Embeddings of sentences, memoised: the same passages come back for many questions."""
        import numpy as np

        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._sent_cache]
        if missing:
            vecs = embed_query(self.embedder, missing)
            with self._lock:
                if len(self._sent_cache) + len(missing) > SENTENCE_CACHE:
                    self._sent_cache.clear()
                self._sent_cache.update(zip(missing, vecs))
        with self._lock:
            return np.stack([self._sent_cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    # --- the two public steps -----------------------------------------------------------------------------
    def search(self, query: str, session: MemoryIndex | None = None, k: int | None = None,
               sources: frozenset[str] | None = None) -> list[Hit]:
        """The k best chunks by reciprocal-rank fusion of dense (FAISS) and BM25 rankings. Hit.score is the
        fused score. Chunks of documents added in a chat session are ranked by the dense side only. With
        `sources` (a filter's allowed documents), only chunks of those documents are ranked."""
        k = k or self.top_k
        n = max(k, self.candidates)
        vec = self.query_vector(query)
        dense = self.index.search(vec, n) if sources is None else self.index.search(vec, n, sources)
        if session is not None and session.chunks:
            dense = sorted(dense + session.search(vec, n, sources), key=lambda h: -h.score)[:n]
        lexical = [self.index.chunks[i] for i in self._lexical(query, n, sources)]
        return fuse([h.chunk for h in dense], lexical, k, self.keep)

    def sentences(self, query: str, hits: Sequence[Hit], n: int, session: MemoryIndex | None = None,
                  max_chars: int | None = None, usable: Callable[[Sentence, str], bool] | None = None) -> list[Sentence]:
        """The sentences of the retrieved chunks that best match the question, best first: at most n, and at
        most max_chars characters in all (the first two whatever their length). With `usable(sentence, its
        document's text)`, the sentences it accepts come before the ones it rejects, each group best first.
        The first of sentence_pages(); see there for the score."""
        return self.sentence_pages(query, hits, n, session, max_chars, usable, pages=1)[0]

    def sentence_pages(self, query: str, hits: Sequence[Hit], n: int, session: MemoryIndex | None = None,
                       max_chars: int | None = None, usable: Callable[[Sentence, str], bool] | None = None,
                       pages: int = 1) -> list[list[Sentence]]:
        """The best sentences as `pages` successive pages (paginate): the first page is what sentences() gives,
        the next page the best ones after it, and so on; a page may be empty when the chunks run out.

        score = cosine(question, sentence) + weight * coverage of the question's key terms by the sentence,
        the sentence before it and its document's title/heading (the words a question uses to name the
        document, release or section often sit there, not in the sentence itself)."""
        if not hits or n <= 0:
            return [[] for _ in range(pages)]
        own = session.texts if session is not None else {}  # documents added in a chat session
        own_docs = session.documents if session is not None else {}
        structures: dict[str, Structure] = {}
        idf, default = self.idf
        cands = self._candidates(hits)
        if not cands:
            return [[] for _ in range(pages)]
        sims = self._similarities(query, cands)
        scored = []  # (sentence, whether `usable` accepts it)
        for (c, s, e), sim in zip(cands, sims):
            mine = c.source in own
            doc = own[c.source] if mine else self.docs.text(c.source)
            if c.source not in structures:
                structures[c.source] = _own_structure(own, own_docs, c.source) if mine else self.docs.structure(c.source)
            structure = structures[c.source]
            ctx = previous_sentence_start(doc, s)
            label, heads = self.docs.label(c.source, e - 1, doc if mine else None, structure)
            if heads and heads[-1][0] >= s:  # a heading line, or a sentence that starts with one: label it from above
                own_heading = doc[heads[-1][0]:heads[-1][1]]
                is_heading = MARKUP.sub("", doc[s:e]) == own_heading
                if RELEASE.search(own_heading):
                    # A heading line naming a release ("OpenSSL 3.0.0", not "HTTP 308"): the release headings above
                    # it are earlier sections' ("3.0.1 and 3.0.2"), not its own, and would mislead the reader.
                    label, heads = self.docs.title(c.source), ()
                else:
                    label, heads = self.docs.label(c.source, s, doc if mine else None, structure)
            else:
                is_heading = False
            # A heading line ("version 1.33 - 2021-01-07") can be the answer itself, but scores on its own words
            # only: otherwise every "Changes in Wget 1.20.x" line would outrank the sentences below it.
            covered = doc[s:e] if is_heading else f"{label}\n{doc[ctx:e]}"
            cov = cite.coverage(query, covered, idf, default)
            x = Sentence(c.source, s, e, doc[s:e], ctx, label, float(sim) + self.sentence_lexical_weight * cov,
                         float(sim), heads, "" if mine else self.docs.about(c.source), structure.section(s),
                         structure.lead or (0, 0))
            scored.append((x, usable is None or usable(x, doc)))
        return paginate([x for x, _ in sorted(scored, key=lambda p: (not p[1], -p[0].score))], n, max_chars, pages)

    def nearest(self, query: str, hits: Sequence[Hit]) -> float:
        """The best cosine of any sentence of the retrieved chunks to the question, shown to the reader or not
        (embeddings memoised: the same ones sentences() computed)."""
        cands = self._candidates(hits)
        return float(self._similarities(query, cands).max()) if cands else 0.0

    @staticmethod
    def _candidates(hits: Sequence[Hit]) -> list[tuple[Chunk, int, int]]:
        """(chunk, start, end) of every sentence of at least three words in the chunks, once each."""
        cands, seen = [], set()
        for h in hits:
            for s, e in sentence_spans(h.chunk.text):
                key = (h.chunk.source, h.chunk.start + s)
                if key not in seen and len(h.chunk.text[s:e].split()) >= 3:
                    seen.add(key)
                    cands.append((h.chunk, h.chunk.start + s, h.chunk.start + e))
        return cands

    def _similarities(self, query: str, cands: list[tuple[Chunk, int, int]]):
        return self._sentence_vectors([c.text[s - c.start:e - c.start] for c, s, e in cands]) @ self.query_vector(query)

    @property
    def idf(self) -> tuple[dict[str, float], float]:
        """IDF of content words over (a sample of) the corpus's chunks, for key-term coverage."""
        import math
        import random

        with self._lock:
            if self._idf is None:
                chunks = self.index.chunks
                sample = chunks if len(chunks) <= IDF_SAMPLE else random.Random(0).sample(list(chunks), IDF_SAMPLE)
                self._idf = (cite.idf_weights([c.text for c in sample]), math.log((len(sample) + 1) / 0.5))
            return self._idf
