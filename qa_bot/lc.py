"""LangChain-native pieces: QARetriever, the bot's passage retrieval as a `BaseRetriever`, and QAChain,
the whole bot as an LCEL runnable that streams.

    from qa_bot import QARetriever
    retriever = QARetriever(k=4)                       # docs_corpus/, builds its own QABot (loads lazily)
    retriever = QARetriever(k=4, corpus_dir="my_docs/")
    retriever = QARetriever(bot=bot, k=4)              # reuses a QABot you already have
    chain = QAChain(bot)                               # the whole bot as an LCEL runnable
    docs = retriever.invoke("When did Alibaba go public?", k=2)   # k per call overrides the default
    retriever = QARetriever(k=4, source="reuters/*.html", since="2023-01-01")   # only the documents a filter lets through
    docs = retriever.invoke("What did the ferry cost?", until="2023-12-31")   # so does a filter field per call

Each Document is one passage: page_content is the chunk text, metadata holds source, start, end (character
offsets into the source file: file_text[start:end] == page_content), title, date and score. The LLM is not
involved: this is retrieval only (dense search + key-term re-ranking, no relevance gate). source/since/until
are the library's filter (qa_bot.filters.Filter); a malformed one, or one that matches no document, raises
FilterError (a ValueError) with its one-line message.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, model_validator

from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel

from .filters import FIELDS as FILTER_FIELDS
from .types import Bot

__all__ = ["QAChain", "QARetriever", "hit_to_document"]


def hit_to_document(hit, title: str = "", date: str = "") -> Document:
    """A retrieved qa_bot Hit as a LangChain Document (title and date: its document's)."""
    c = hit.chunk
    return Document(
        page_content=c.text,
        id=getattr(c, "id", None) or None,
        metadata={"source": c.source, "start": c.start, "end": c.end, "title": title or getattr(c, "title", "") or "",
                  "date": date or getattr(c, "date", "") or "", "score": float(hit.score)},
    )


class QAInput(BaseModel):
    """What QAChain takes: the question, earlier (question, answer) turns for follow-ups, and an optional filter
    (source name/glob/publisher; since/until yyyy-mm-dd, inclusive)."""

    question: str
    history: list[tuple[str, str]] = []
    source: str | None = None
    since: str | None = None
    until: str | None = None


class QAChain(Runnable):
    """A QABot as an LCEL runnable: {"question", "history"?, "session"?, "source"?, "since"?, "until"?} -> Answer.
    `invoke` returns the
    Answer; `stream`/`astream` yield the verified text pieces as they pass, then the Answer (the same
    object `QABot.ask_stream` yields), so it composes and streams like any LangChain runnable."""

    name = "qa_bot"

    def __init__(self, bot: Bot):
        self.bot = bot

    @property
    def InputType(self):
        return QAInput

    @property
    def OutputType(self):
        from .types import Answer

        return Answer

    def get_input_schema(self, config: RunnableConfig | None = None):
        return QAInput

    def _args(self, x) -> tuple[str, dict]:
        if isinstance(x, str):
            return x, {}
        x = dict(x)
        return x.get("question"), {"history": x.get("history") or (), "session": x.get("session"),
                                   **{f: x.get(f) for f in FILTER_FIELDS}}

    def invoke(self, input, config: RunnableConfig | None = None, **kwargs):
        question, kw = self._args(input)
        return self._call_with_config(lambda _: self.bot.ask(question, **kw), input, config)

    def stream(self, input, config: RunnableConfig | None = None, **kwargs):
        question, kw = self._args(input)
        yield from self.bot.ask_stream(question, **kw)

    async def astream(self, input, config: RunnableConfig | None = None, **kwargs):
        # The bot is blocking (embedder, llama.cpp): step its generator in a worker thread.
        question, kw = self._args(input)
        pieces, done = iter(self.bot.ask_stream(question, **kw)), object()
        while (piece := await run_in_executor(None, next, pieces, done)) is not done:
            yield piece


class QARetriever(BaseRetriever):
    """Passages of a qa_bot corpus for a query, best first. `k` is the default number returned; `invoke(q, k=n)`
    overrides it for one call. Pass `bot` to reuse a QABot, else one is built for `corpus_dir` (default
    docs_corpus/) with settings from the QA_BOT_* environment. source/since/until restrict it to the documents
    the filter lets through; `invoke(q, since=...)` overrides a field for one call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = Field(default=4, ge=1)
    corpus_dir: str | Path | None = None
    source: str | None = None
    since: str | None = None
    until: str | None = None
    bot: Any = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="after")
    def _build_bot(self) -> "QARetriever":
        if self.bot is None:
            from .pipeline import QABot  # loads nothing heavy until the first query

            self.bot = QABot(self.corpus_dir)
        return self

    def _k(self, k: int | None) -> int:
        if k is None:
            return self.k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        return k

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **filters
    ) -> list[Document]:
        unknown = set(filters) - set(FILTER_FIELDS)
        if unknown:
            raise TypeError(f"unexpected argument(s): {', '.join(sorted(unknown))}")
        flt = {f: filters[f] if filters.get(f) is not None else getattr(self, f) for f in FILTER_FIELDS}
        titles, metadata = getattr(self.bot, "titles", {}), getattr(self.bot, "metadata", {})
        return [hit_to_document(h, titles.get(h.chunk.source, ""),
                                getattr(metadata.get(h.chunk.source), "date", ""))
                for h in self.bot.retrieve(query, k=self._k(k), **flt)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None, **filters
    ) -> list[Document]:
        # The embedder and FAISS are blocking: run them in a worker thread, not on the event loop.
        return await run_in_executor(None, self._get_relevant_documents, query,
                                     run_manager=run_manager.get_sync(), k=k, **filters)
