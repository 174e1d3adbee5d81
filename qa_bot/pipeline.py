"""QABot: the public API, wiring the stages into a LangChain (LCEL) runnable chain:

    question -> retrieve (+ relevance gate) -> prompt -> LLM -> verify citations -> Answer
"""
from __future__ import annotations

import re
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

from . import answer as answer_stage
from . import prompts
from .errors import CorpusError, QABotError
from .ingest import Document, chunk_text, document_from_bytes, load_corpus
from .index import MemoryIndex, VectorIndex, load_or_build
from .llm import LLMProvider, backend_error
from .retrieve import Retriever, standalone_question
from .settings import Settings
from .types import Answer

SESSION_PREFIX = "session/"  # sources of documents added in a chat session; never clash with corpus names


class QABot:
    """Ask questions about the documents in a corpus folder.

    bot = QABot()                         # docs_corpus/ and the bundled local model
    bot = QABot("my_docs/")               # another folder
    bot = QABot(llm=some_langchain_chat_model, embedder=...)   # tests, or a model you built yourself
    """

    def __init__(self, corpus_dir: str | Path | None = None, *, settings: Settings | None = None, llm=None, embedder=None):
        settings = settings or Settings.from_env()
        if corpus_dir is not None:
            settings = settings.replace(corpus_dir=Path(corpus_dir).expanduser())
        self.settings = settings
        self._llm_override = llm
        self._embedder_override = embedder
        self._provider = LLMProvider(settings)
        self._lock = threading.Lock()
        self.skipped = []  # corpus files that could not be used, with reasons

    # --- lazily built parts -------------------------------------------------------------------------
    @cached_property
    def embedder(self):
        if self._embedder_override is not None:
            return self._embedder_override
        from .embed import SentenceTransformerEmbedder

        s = self.settings
        precision = None if s.embed_precision == "fp32" else s.embed_precision
        return SentenceTransformerEmbedder(
            s.embedding_model, threads=s.torch_threads, batch_size=s.embed_batch_size, quantize=precision
        )

    @cached_property
    def documents(self) -> dict[str, Document]:
        docs, self.skipped = load_corpus(self.settings.corpus_dir, self.settings.max_file_bytes)
        return {d.source: d for d in docs}

    @cached_property
    def index(self) -> VectorIndex:
        return self._load_index(force=False)

    def _load_index(self, force: bool) -> VectorIndex:
        from . import ann

        ann.configure_threads(1)  # one search thread: 2 cores are shared with torch and llama.cpp
        s = self.settings
        return load_or_build(
            list(self.documents.values()), corpus_dir=s.corpus_dir, cache_dir=s.cache_dir, embedder=self.embedder,
            chunk_chars=s.chunk_chars, chunk_max_tokens=s.chunk_max_tokens, force=force,
        )

    @cached_property
    def retriever(self) -> Retriever:
        s = self.settings
        return Retriever(
            self.index, self.embedder, top_k=s.top_k, threshold=s.relevance_threshold, candidates=s.rerank_candidates
        )

    @property
    def llm(self):
        return self._llm_override if self._llm_override is not None else self._provider.get()

    @cached_property
    def generator(self):
        """prompt | LLM | text: the generation runnable."""
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate

        prompt = ChatPromptTemplate.from_messages([("system", prompts.SYSTEM_PROMPT), ("human", prompts.USER_PROMPT)])
        return prompt | self.llm | StrOutputParser()

    @cached_property
    def chain(self):
        """The whole pipeline as one LCEL runnable: {"question", "history"?, "session"?} -> Answer."""
        from langchain_core.runnables import RunnableLambda, RunnablePassthrough

        return (
            RunnableLambda(self._prepare)
            | RunnablePassthrough.assign(draft=RunnableLambda(self._generate))
            | RunnableLambda(self._finish)
        )

    def warm_up(self) -> "QABot":
        """Load the corpus, index, embedder and LLM now rather than on the first question. The LLM server
        starts in a second thread: llama.cpp loads its weights outside the GIL while torch loads here."""
        errors: list[BaseException] = []

        def start_llm():
            try:
                _ = self.llm
            except BaseException as exc:  # re-raised below, in the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=start_llm, daemon=True)
        thread.start()
        self.retriever.search("warm up")
        thread.join()
        if errors:
            raise errors[0]
        return self

    def build_index(self, force: bool = True) -> VectorIndex:
        """(Re)build the index now; force=True re-chunks and rebuilds even when the cache is valid."""
        self.__dict__.pop("retriever", None)
        self.index = self._load_index(force=force)
        return self.index

    # --- stages ---------------------------------------------------------------------------------------
    def _prepare(self, inputs: dict) -> dict:
        t0 = time.perf_counter()
        question = answer_stage.clean_question(inputs["question"], self.settings.max_question_chars)
        standalone = standalone_question(question, inputs.get("history") or ()) if self.settings.rewrite_followups else None
        query = standalone or question
        t1 = time.perf_counter()
        hits = self.retriever.search(query, inputs.get("session"))
        rel = self.retriever.relevance(query, hits)
        # The LLM sees only passages judged relevant: a shorter prompt is faster on 2 cores, and a planted
        # document that does not address the question never reaches the model.
        keep = [i for i, ok in enumerate(rel.relevant) if ok][: self.settings.llm_passages]
        context = [hits[i] for i in keep]
        quote = None
        if rel.best_quote and rel.best_quote[0] in keep:
            quote = (keep.index(rel.best_quote[0]), rel.best_quote[1])
        t2 = time.perf_counter()
        timings = {"rewrite": t1 - t0, "retrieve": t2 - t1}
        return {
            "question": question, "query": query, "standalone": standalone, "hits": hits, "context": context,
            "quote": quote, "relevant": bool(context), "timings": timings,
            "passages": answer_stage.format_passages(context), "t0": t0,
        }

    def _generate(self, state: dict) -> str:
        if not state["relevant"]:
            return ""  # nothing relevant was found: refuse without asking the LLM
        t = time.perf_counter()
        try:
            draft = self.generator.invoke({"passages": state["passages"], "question": state["query"]})
        except QABotError:
            raise
        except Exception as exc:
            raise backend_error(exc, self.settings) from exc
        state["timings"]["generate"] = time.perf_counter() - t
        return draft

    def _finish(self, state: dict) -> Answer:
        t = time.perf_counter()
        timings = state["timings"]
        if not state["relevant"]:
            timings.update(generate=0.0, verify=0.0, total=time.perf_counter() - state["t0"])
            return answer_stage.refusal(state["question"], state["hits"], timings, state["standalone"])
        result = answer_stage.finalize(
            state["question"], state["draft"], state["context"], state["quote"], retrieved=state["hits"],
            timings=timings, standalone=state["standalone"], query=state["query"],
        )
        timings["verify"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - state["t0"]
        return result

    # --- public API -----------------------------------------------------------------------------------
    def ask(self, question: str, *, history: Sequence[tuple[str, str]] = (), session: MemoryIndex | None = None) -> Answer:
        """Answer one question. Raises InvalidQuestion (a ValueError) for bad input, BackendError when the
        LLM server fails, CorpusError when the corpus cannot be read."""
        with self._lock:  # one llama.cpp context: answer one question at a time
            return self.chain.invoke({"question": question, "history": list(history), "session": session})

    def ask_stream(
        self, question: str, *, history: Sequence[tuple[str, str]] = (), session: MemoryIndex | None = None
    ) -> Iterator[str | Answer]:
        """Yield pieces of verified answer text as the LLM writes them (a sentence is shown only once it is
        complete and verified), then the final Answer, whose text is authoritative."""
        with self._lock:
            state = self._prepare({"question": question, "history": list(history), "session": session})
            draft, shown = "", ""
            if state["relevant"]:
                t = time.perf_counter()
                first = None
                try:
                    for piece in self.generator.stream({"passages": state["passages"], "question": state["query"]}):
                        first = first or time.perf_counter()
                        draft += piece
                        done = _complete_sentences(draft)
                        if done:
                            partial = self._finish({**state, "draft": done, "timings": dict(state["timings"])})
                            if not partial.abstained and partial.text.startswith(shown) and len(partial.text) > len(shown):
                                yield partial.text[len(shown):]
                                shown = partial.text
                except QABotError:
                    raise
                except Exception as exc:
                    raise backend_error(exc, self.settings) from exc
                state["timings"]["generate"] = time.perf_counter() - t
                state["timings"]["first_token"] = (first or time.perf_counter()) - state["t0"]
            final = self._finish({**state, "draft": draft})
            if final.text != shown and final.text.startswith(shown):
                yield final.text[len(shown):]
            yield final

    def retrieve(self, query: str, k: int | None = None, session: MemoryIndex | None = None) -> list:
        """The k best passages (Hit) for `query` (default top_k), best first; no relevance gate, no LLM."""
        query = answer_stage.clean_question(query, self.settings.max_question_chars)
        return self.retriever.search(query, session, k)

    def as_retriever(self, k: int = 4):
        """This bot's retrieval as a LangChain retriever (qa_bot.lc.QARetriever)."""
        from .lc import QARetriever

        return QARetriever(k=k, bot=self)

    def document_text(self, source: str, session: MemoryIndex | None = None) -> str:
        if session is not None and source in session.texts:
            return session.texts[source]
        doc = self.documents.get(source)
        if doc is None:
            raise CorpusError(f"no document named {source!r}")
        return doc.text

    def add_document(self, session: MemoryIndex | None, name: str, data: bytes) -> MemoryIndex:
        """A new session index with this document added (kept in memory, for that session only)."""
        s = self.settings
        base = Path(str(name)).name or "document.txt"
        if Path(base).suffix.lower() not in (".txt", ".md"):
            raise CorpusError(f"{base}: only .txt and .md documents can be added")
        if len(data) > s.max_upload_bytes:
            raise CorpusError(f"{base}: {len(data) / 1e6:.1f} MB is over the {s.max_upload_bytes / 1e6:.1f} MB limit")
        doc = document_from_bytes(SESSION_PREFIX + base, data)
        chunks = chunk_text(doc.text, doc.source, max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                            count_tokens=self.embedder.count_tokens)
        vectors = self.embedder.embed([c.text for c in chunks])
        return (session or MemoryIndex()).with_document(doc, chunks, vectors)

    def close(self) -> None:
        self._provider.close()

    def __enter__(self) -> "QABot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _complete_sentences(draft: str) -> str:
    """The part of a streamed draft that ends at a sentence end (markers after the stop included)."""
    ends = [m.end() for m in re.finditer(r"[.!?](\s*\[\d+(?:,\s*\d+)*\])*(?=\s)", draft)]
    return draft[: ends[-1]] if ends else ""
