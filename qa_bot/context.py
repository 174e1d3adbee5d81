"""What the reader is shown for a question: the question made to stand alone, the retrieved chunks, and the
sentences chosen from them (a whole text when it fits the reader's budget, else whole passages, else the best
sentences), as one Prepared value."""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain

from . import followup, ground, prompts
from . import question as question_stage
from .corpus import Corpus
from .filters import Filter
from .index import MemoryIndex
from .reader import Reader
from .reader.render import whole_text
from .types import Hit, Sentence

# A corpus over this many characters per prompt token of a slot is never read whole, without ranking its sentences
# to find out (English prose is ~4 characters a token; the exact test is question.estimate_tokens).
WHOLE_CHARS_PER_TOKEN = 4
PASSAGE_MARGIN = 1.15  # numbering and labels add to the passages' own tokens in the reader's prompt


@dataclass(frozen=True)
class Prepared:
    """What retrieval hands the reader."""

    question: str  # cleaned
    query: str  # the question, or the follow-up rewritten to stand alone
    standalone: str | None
    hits: tuple[Hit, ...]  # ranked chunks (for display and retrieval metrics)
    sentences: tuple[Sentence, ...]  # what the reader sees, numbered from 1 in this order
    t0: float
    nearest: float  # the best cosine of any retrieved sentence to the question, shown or not
    timings: dict = field(default_factory=dict)  # rewrite and retrieve; each answer copies it to add its own
    later: tuple[tuple[Sentence, ...], ...] = ()  # the next-best sentences, a page per further look (reader_looks)
    whole: bool = False  # `sentences` are a whole text (the corpus, or the best document): the reader may hold it
    ordered: bool = False  # the reader sees `sentences` in document order (passages and whole texts), not best first
    several: bool = False  # the corpus has several documents: sentences are shown with their documents' labels

    def looks(self) -> Iterator["Prepared"]:
        """This, then the same question with each later page as its sentences: what the reader reads in turn."""
        yield self
        for page in self.later:
            if page:
                yield replace(self, sentences=page, later=())


class Context:
    """Builds a question's Prepared from the corpus, for this reader (what it reads well, and its rewrite call)."""

    def __init__(self, corpus: Corpus, reader: Reader):
        self.corpus = corpus
        self.reader = reader

    def prepare(self, question: str, history: Sequence[tuple[str, str]], session: MemoryIndex | None,
                flt: Filter = Filter()) -> Prepared:
        """question and history as question.normalise leaves them."""
        t0 = time.perf_counter()
        corpus, s = self.corpus, self.corpus.settings
        standalone = None
        if s.rewrite_followups:  # a follow-up that depends on the turns before it, made to stand alone (followup.py)
            call = ((lambda system, user, schema: self.reader.call(system, user, schema, "rewrite"))
                    if s.rewrite_with_reader else None)
            rewritten = followup.standalone(question, history, call=call, budget=s.prompt_token_budget,
                                            max_chars=s.max_question_chars,
                                            subjects=followup.subject_words(corpus.documents))
            standalone = rewritten.question if rewritten else None
        query = standalone or question
        several = len(corpus.documents) > 1
        sources = corpus.allowed(flt, session)
        t1 = time.perf_counter()
        hits = corpus.search(query, session, sources=sources)
        whole = self._whole(query, session, sources, several) if self.reader.reads_whole else None
        ordered = whole is not None
        later: list[list[Sentence]]  # further pages of sentences, for the reader's next looks
        if whole is None and self.reader.reads_passages and hits:
            # The best document whole when it fits the reader's budget, else the best passages whole until it.
            whole = self._whole(query, session, frozenset({hits[0].chunk.source}), several, s.reader_tokens)
            ordered = True
            if whole is None:
                chosen = self._passages(hits, query)
                sentences, later = corpus.retriever.sentences(query, chosen, sum(len(h.chunk.text) for h in chosen),
                                                              session, usable=ground.can_ground(query)), []
        if whole is not None:
            sentences, later = whole, []
        elif not ordered:
            # Sentences lacking a number, version or name the question states can ground no answer (ground.py):
            # they are shown only when too few others are left.
            sentences, *later = corpus.retriever.sentence_pages(query, hits, s.reader_sentences, session, s.reader_chars,
                                                                usable=ground.can_ground(query), pages=s.reader_looks)
        # "Near the question" is judged on every retrieved sentence, so it does not depend on how many the
        # reader is shown nor on the order they are shown in.
        nearest = corpus.retriever.nearest(query, hits)
        t2 = time.perf_counter()
        return Prepared(question, query, standalone, tuple(hits), tuple(sentences), t0, nearest,
                        {"rewrite": t1 - t0, "retrieve": t2 - t1}, tuple(tuple(page) for page in later), whole is not None,
                        ordered, several)

    def _passages(self, hits: Sequence[Hit], query: str) -> list[Hit]:
        """The best retrieved chunks, in rank order, while their text fits the reader's budget and its prompt (the
        first one whatever its length): whole passages, as a reader needs them, rather than scattered sentences."""
        s = self.corpus.settings
        room = s.prompt_token_budget - question_stage.estimate_tokens(
            prompts.READER_SYSTEM + prompts.READER_USER.format(sentences="", question=query))
        budget = min(s.reader_tokens, int(room / PASSAGE_MARGIN))
        chosen: list[Hit] = []
        used = 0
        for h in hits:
            n = question_stage.estimate_tokens(h.chunk.text)
            if chosen and used + n > budget:
                break
            chosen.append(h)
            used += n
        return chosen

    def _whole(self, query: str, session: MemoryIndex | None, sources: frozenset[str] | None, several: bool,
               max_tokens: int | None = None) -> list[Sentence] | None:
        """Every sentence of the documents searched, best first (as the reader's sentences are ranked, those that
        can ground an answer first), when the reader's prompt holds them all with the question (and, with
        max_tokens, their text is at most that many tokens); None otherwise."""
        corpus, s = self.corpus, self.corpus.settings
        budget = s.prompt_token_budget if max_tokens is None else min(max_tokens, s.prompt_token_budget)
        chunks = (c for c in corpus.index.chunks if c.source not in corpus.quarantined)
        n = chars = 0
        for c in chain(chunks, session.chunks if session is not None else ()):
            if sources is None or c.source in sources:
                n, chars = n + 1, chars + len(c.text)
                if chars > WHOLE_CHARS_PER_TOKEN * budget:
                    return None  # far too long, found without going through a large corpus's every chunk
        if not n:
            return None
        hits = corpus.search(query, session, n, sources)
        ranked = corpus.retriever.sentences(query, hits, chars, session, usable=ground.can_ground(query))  # all of them
        text = whole_text(ranked, several)
        user = prompts.READER_USER.format(sentences=text, question=query)
        fits = (question_stage.estimate_tokens(prompts.READER_SYSTEM) + question_stage.estimate_tokens(user)
                <= s.prompt_token_budget) and (max_tokens is None or question_stage.estimate_tokens(text) <= max_tokens)
        return ranked if ranked and fits else None
