"""Retrieve stage: turn a (possibly follow-up) question into ranked passages, and decide whether they
are about the question at all."""
from __future__ import annotations

import math
import random
import re
import threading
from dataclasses import dataclass
from typing import Sequence

from . import cite
from .index import MemoryIndex, VectorIndex
from .types import Hit

# Words that point back to something said before. A question using one and naming nothing itself is a
# follow-up; one that names its subject ("How much revenue did Alibaba Cloud make?") stands alone.
_BACK_REFERENCE = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|there|then|"
    r"the (company|firm|unit|group|business|model|product|deal|plan|move|spin-?off))\b",
    re.IGNORECASE,
)
IDF_SAMPLE = 20000  # IDF from at most this many passages: bounded start-up on a huge archive
SENTENCE_CACHE = 50000  # sentence vectors kept (384 floats each: ~77 MB at most)


def is_followup(question: str) -> bool:
    names = cite.proper_names(question) - {question.split()[0].lower()} if question.split() else set()
    return bool(_BACK_REFERENCE.search(question)) and not names and len(question.split()) <= 14


def standalone_question(question: str, history: Sequence[tuple[str, str]]) -> str | None:
    """A follow-up rewritten to stand alone by carrying the previous question's subject; None when the
    question already stands alone (no rewrite, no cost). Deterministic on purpose: a 135M model
    rewriting questions changes their meaning too often to be trusted."""
    if not history or not is_followup(question):
        return None
    previous = next((q for q, _ in reversed(history) if q and q.strip()), "")
    if not previous:
        return None
    return f"{question.rstrip()} (following up on: {previous.strip()})"


@dataclass(frozen=True)
class Relevance:
    """How well the retrieved passages address the question.

    Each sentence of each passage gets score = coverage + SIM_WEIGHT * max(0, cosine - SIM_FLOOR), where
    coverage is the IDF-weighted share of the question's key terms in the sentence's passage and cosine
    the embedding similarity of question and sentence. Coverage catches questions about things the
    article never mentions ("net profit"); the similarity term rescues paraphrased questions whose words
    the article does not use ("set a record" vs "the largest IPO at the time")."""

    scores: tuple[float, ...]  # per passage: the best sentence score
    best_quote: tuple[int, str] | None  # (passage index, sentence) with the best score
    relevant: tuple[bool, ...]  # per passage: score >= threshold


SIM_WEIGHT, SIM_FLOOR = 0.8, 0.5
LEXICAL_WEIGHT = 0.3  # re-ranking: a passage with all the question's rare terms gains 0.3 of cosine


class Retriever:
    def __init__(self, index: VectorIndex, embedder, *, top_k: int, threshold: float, candidates: int = 20):
        self.index = index
        self.candidates = candidates
        self.embedder = embedder
        self.top_k = top_k
        self.threshold = threshold
        self._idf = None
        self._lock = threading.Lock()
        self._sent_cache: dict = {}
        self._last_query: tuple[str, object] | None = None

    @property
    def idf(self) -> tuple[dict[str, float], float]:
        with self._lock:
            if self._idf is None:
                chunks = self.index.chunks
                sample = chunks if len(chunks) <= IDF_SAMPLE else random.Random(0).sample(chunks, IDF_SAMPLE)
                n = len(sample)
                self._idf = (cite.idf_weights([c.text for c in sample]), math.log((n + 1) / 0.5))
            return self._idf

    def _sentence_vectors(self, texts: list[str]):
        """Embeddings of passage sentences, memoised: the same passages come back for many questions, and
        embedding ~15 sentences per question would otherwise be most of the non-LLM time."""
        import numpy as np

        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._sent_cache]
        if missing:
            vecs = self.embedder.embed(missing)
            with self._lock:
                if len(self._sent_cache) + len(missing) > SENTENCE_CACHE:
                    self._sent_cache.clear()
                self._sent_cache.update(zip(missing, vecs))
        with self._lock:
            return np.stack([self._sent_cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def _query_vector(self, query: str):
        """The question's embedding; search() and relevance() ask for the same one in turn."""
        with self._lock:
            if self._last_query and self._last_query[0] == query:
                return self._last_query[1]
        vec = self.embedder.embed([query])[0]
        with self._lock:
            self._last_query = (query, vec)
        return vec

    def search(self, query: str, session: MemoryIndex | None = None, k: int | None = None) -> list[Hit]:
        """Dense candidates from FAISS, re-ranked by score = cosine + LEXICAL_WEIGHT * key-term coverage.
        A short question ("Who is the chief executive?") can sit closer in embedding space to passages
        about the company in general than to the one long quote that names its CEO; the rare words it
        shares with that passage bring it back up. Costs ~1 ms for 20 candidates."""
        k = k or self.top_k
        n = max(k, self.candidates)
        vec = self._query_vector(query)
        hits = self.index.search(vec, n)
        if session is not None and session.chunks:
            hits = hits + session.search(vec, n)
        idf, default = self.idf
        rescored = [Hit(h.chunk, h.score + LEXICAL_WEIGHT * cite.coverage(query, h.chunk.text, idf, default)) for h in hits]
        return sorted(rescored, key=lambda h: -h.score)[:k]

    def relevance(self, question: str, hits: Sequence[Hit]) -> Relevance:
        if not hits:
            return Relevance((), None, ())
        from .ingest import sentence_spans

        idf, default = self.idf
        sents = [(i, h.chunk.text[s:e]) for i, h in enumerate(hits) for s, e in sentence_spans(h.chunk.text)]
        sims = self._sentence_vectors([t for _, t in sents]) @ self._query_vector(question)
        bonus = [SIM_WEIGHT * max(0.0, float(sim) - SIM_FLOOR) for sim in sims]
        cov = [cite.coverage(question, h.chunk.text, idf, default) for h in hits]
        scores = [0.0] * len(hits)
        for (i, _), b in zip(sents, bonus):
            scores[i] = max(scores[i], cov[i] + b)
        # The sentence to quote must itself carry the question's terms, and be a sentence, not a heading.
        best, best_quote = -1.0, None
        for (i, text), b in zip(sents, bonus):
            if scores[i] < self.threshold or len(text.split()) < 4:
                continue
            score = cite.coverage(question, text, idf, default) + b
            if score > best:
                best, best_quote = score, (i, text)
        return Relevance(tuple(scores), best_quote, tuple(x >= self.threshold for x in scores))
