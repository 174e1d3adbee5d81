"""QABot: the public API. One question walks through these steps, all in `QABot._answer`:

    question, history and follow-up rewrite checked and cleaned (question.py)
    -> hybrid retrieval of chunks, then the few best sentences (retrieve.Retriever)
    -> the reader: short answer (+ sentence number, cut off by prompts.READER_STOP), JSON-schema constrained
    -> grounding rules in code (ground.py), then an optional yes/no check by the reader (prompts.CHECK_*)
    -> Answer with one citation whose span is the exact supporting sentence(s)

`ask_stream` returns an AnswerStream (qa_bot.types) over that one path, `ask` drains it, and `chain` is the
same thing as a LangChain runnable (qa_bot.lc).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Callable, Collection, Iterator, Sequence

import numpy as np

from . import cite, followup, ground, prompts, sanitize
from . import question as question_stage
from . import summary as summary_stage
from .errors import CorpusError, InvalidQuestion, QABotError
from .filters import Filter, allowed_sources
from .ingest import (DOC_SUFFIXES, Document, Metadata, chunk_documents, chunk_text, document_from_bytes, document_title,
                     instructions_to_assistant, load_corpus, title_from_name)
from .index import MemoryIndex, VectorIndex
from .llm import Deadline, LLMProvider, ReplyTooLong, backend_error, exception_chain, is_context_overflow
from .llm import deadline as llm_deadline
from .ocr import OcrOptions
from .retrieve import DocumentInfo, Retriever
from .settings import Settings
from .types import Answer, AnswerStream, Citation, Hit, Sentence, Stage

log = logging.getLogger("qa_bot")
# A corpus over this many characters per prompt token of a slot is never read whole, without ranking its sentences
# to find out (English prose is ~4 characters a token; the exact test is question.estimate_tokens).
WHOLE_CHARS_PER_TOKEN = 4
PASSAGE_MARGIN = 1.15  # numbering and labels add to the passages' own tokens in the reader's prompt
WHOLE_PRIMER = "What does it say?"  # the question the corpus is first read whole with: only the text before it is kept

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

    def looks(self) -> Iterator["Prepared"]:
        """This, then the same question with each later page as its sentences: what the reader reads in turn."""
        yield self
        for page in self.later:
            if page:
                yield replace(self, sentences=page, later=())


@dataclass(frozen=True)
class Reply:
    """One LLM reply: its text, and its tokens' log-probabilities when they were asked for and given (each as
    OpenAI's chat format has it: {"token", "logprob", "top_logprobs": [...]})."""

    text: str
    logprobs: tuple[dict, ...] = ()
    finish: str = ""  # the server's finish_reason: "length" is a reply cut at max_tokens; "" when not given


class QABot:
    """Ask questions about the documents in a corpus folder.

    bot = QABot()                         # docs_corpus/ and the bundled local reader
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
        self._provider = LLMProvider(settings, prompts.prefix_tag(settings.reader_check))
        self._lock = threading.Lock()
        # Questions in flight (waiting for the lock or answering): slow work such as embedding an added
        # document runs only while this is 0, so it never sits between a user and their answer.
        self._answering = 0
        self._idle = threading.Condition()
        self._json_output = True  # cleared once if an OpenAI-compatible server rejects response_format
        self._logprobs = True  # cleared once if it rejects logprobs (the check then takes its verdict as written)
        self.skipped = []  # corpus files that could not be used, with reasons
        self._holding = ""  # the whole text the local reader's slot holds now (_hold_whole), "" for none
        self.ocr = OcrOptions.from_settings(settings)  # how scanned PDF pages are read (corpus and uploads)
        self._warm = False  # the reader has answered once (warm_up, or a question): for readiness()
        self.corpus_version = 0  # how many times reload() has swapped in a changed corpus

    # --- lazily built parts -------------------------------------------------------------------------
    @cached_property
    def embedder(self):
        if self._embedder_override is not None:
            return self._embedder_override
        from .embed import make_embedder

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
        """The corpus's documents with their metadata and chunk counts (as the index chunks them), for
        `qa-bot docs`; the skipped files are in self.skipped."""
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
        """Corpus documents kept out of answers because they address instructions to an AI assistant, with the
        passage that does (settings.quarantine_injections); each named in one warning."""
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

    @property
    def refusal(self) -> str:
        return prompts.refusal_text(len(self.documents))

    @cached_property
    def index(self) -> VectorIndex:
        return self._load_index(force=False)

    def _load_index(self, force: bool, progress=None, documents=None) -> VectorIndex:
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

    def reload(self, documents: Sequence[Document], skipped: Sequence = (), progress=None):
        """Answer from these documents from now on (watch.py: the corpus folder changed). Their index is brought up
        to date through the incremental path (open_index: unchanged chunk texts keep their vectors, only new text
        is embedded, and the new version replaces the old atomically on disk) and their retriever is built while
        questions go on being answered from the old ones; then everything is swapped in at once, between two
        answers. A corpus read whole is read by the next question (_hold_whole), not here: a folder that changes
        often would otherwise have the reader re-read it at every change, asked or not. Returns the new index."""
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
            self.corpus_version += 1
        return index

    def readiness(self) -> dict:
        """What /readyz reports, loading nothing: ready once the index is loaded and the reader has answered (warm_up
        or a question), with the corpus's size and the index version (the corpus hash its manifest records)."""
        index, docs = self.__dict__.get("index"), self.__dict__.get("documents")
        info = getattr(index, "info", None) or {}
        return {"ready": index is not None and self._warm, "index_loaded": index is not None,
                "reader_warm": self._warm, "documents": None if docs is None else len(docs),
                "chunks": None if index is None else len(index.chunks),
                "index_version": (info.get("corpus_sha256") or "")[:16] or None,
                "corpus_version": self.corpus_version}

    @property
    def llm(self):
        return self._llm_override if self._llm_override is not None else self._provider.get()

    def model_info(self) -> dict:
        """Which reader answers: backend, model name, file and its sha256 (for eval reports)."""
        if self._llm_override is not None:
            return {"backend": "custom", "model": type(self._llm_override).__name__}
        return self._provider.info()

    @cached_property
    def chain(self):
        """The pipeline as a LangChain runnable (qa_bot.lc.QAChain): {"question", "history"?} -> Answer;
        `chain.stream`/`astream` yield verified text pieces, then the Answer."""
        from .lc import QAChain

        return QAChain(self)

    def warm_up(self) -> "QABot":
        """Load the corpus, index, embedder and LLM now rather than on the first question. The LLM server
        starts in a second thread: llama.cpp loads its weights outside the GIL while torch loads here."""
        errors: list[BaseException] = []

        def start_llm():
            try:
                self._prime()
            except BaseException as exc:  # re-raised below, in the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=start_llm, daemon=True)
        thread.start()
        hits = self.retriever.search("warm up")
        self.retriever.sentences("warm up", hits, 1)
        _ = self.retriever.bm25
        thread.join()
        if errors:
            raise errors[0]
        self._prime_whole()
        self._warm = True
        return self

    def _prime(self) -> None:
        """Start the LLM and have it read the reader's and the check's fixed instructions once, so that the
        first question reads only its own sentences: unprimed, question 1 took 7.0 s and question 2 2.0 s
        with the 1.5B reader (measured 2026-11-26, load ~0.5). With a remote server this is one short call each.
        The local server's state after this is saved, so later starts load it instead (LLMProvider.save_primed)
        and make no call here: the warm-up falls from 10.3 s to ~3.5 s, and app.py's first answer from 10.5 to
        ~9.0 s (the two calls' ~0.8 s on the waiting question versus ~0.15 s of client set-up it now pays)."""
        with self._lock:  # a question asked meanwhile waits, then reads alone on primed slots, not beside these calls
            self._prime_locked()

    def _prime_locked(self) -> None:
        _ = self.llm  # starts the local server, which loads the fixed prompts' saved KV cache if there is one
        if self._provider.primed:  # nothing left to read: the calls below would cost ~0.8 s to save question 1 ~0.15 s
            return
        filler = prompts.SENTENCE_LINE.format(n=1, text="-")
        self._call(prompts.READER_SYSTEM, prompts.READER_USER.format(sentences=filler, question="-"), prompts.READER_SCHEMA, "reader")
        self._prime_check()
        if self._llm_override is None:
            self._provider.save_primed()

    def _prime_check(self) -> None:
        if self.settings.reader_check:
            self._invoke(prompts.CHECK_SYSTEM, prompts.CHECK_USER.format(evidence="-", question="-", answer="-"),
                         prompts.CHECK_SCHEMA, "check", top_logprobs=ground.TOP_LOGPROBS)

    def _prime_whole(self) -> None:
        """With a corpus read whole (settings.reader_whole), have the reader read it now, after the fixed prompts,
        and keep that state for the next start: otherwise the first question would read the whole corpus (~11 s
        for the shared article with the 1.5B reader, 2026-11-29). Later starts load the saved state."""
        if not self._reads_whole:
            return
        with self._lock:
            p = self._prepare(WHOLE_PRIMER, (), None)
            if p.whole and len({x.source for x in p.sentences}) == len(self.documents):  # the corpus, not one document of it
                self._hold_whole(p)

    def _hold_whole(self, p: Prepared) -> None:
        """(lock held) Make the LLM hold the text `p` reads whole (the corpus, or the best document): the saved
        state of it is loaded, or else it is read now (and saved, for a local server), so that this question and
        the next ones about the same text read only themselves. A question asked before the warm-up got this far
        (app.py answers while it warms up) or without one (QABot().ask) comes here too."""
        text = self._whole_text(p.sentences)
        if text == self._holding:
            return
        self._holding = text
        tag = prompts.prefix_tag(self.settings.reader_check, text)
        _ = self.llm  # the local server starts here when nothing asked it before (its fixed prompts' state loads)
        if self._local and self._provider.restore(tag):
            return
        self._read(replace(p, query=WHOLE_PRIMER))
        self._prime_check()  # again: a saved state that failed to load may have emptied the check's slot
        if self._local:
            self._provider.save_primed(tag)

    def build_index(self, force: bool = True, progress=None) -> VectorIndex:
        """(Re)build the index now; force=True re-chunks and rebuilds even when the cache is valid.
        progress(IndexProgress) as chunks are embedded. Forced, with the documents not yet read, they are read
        (HTML and PDF in worker processes) while the ones already read are chunked and embedded."""
        self.__dict__.pop("retriever", None)
        if force and "documents" not in self.__dict__:
            from .ingest import CorpusStream

            stream = CorpusStream(self.settings.corpus_dir, self.settings.max_file_bytes, None,
                                  self.settings.corpus_limits, ocr=self.ocr)
            try:
                self.index = self._load_index(force=True, progress=progress, documents=stream)
            finally:
                self.skipped = stream.skipped
            self.documents = {d.source: d for d in stream.documents}
            return self.index
        self.index = self._load_index(force=force, progress=progress)
        return self.index

    # --- stages ---------------------------------------------------------------------------------------
    def _prepare(self, question: str, history: Sequence[tuple[str, str]], session: MemoryIndex | None,
                 flt: Filter = Filter()) -> Prepared:
        t0 = time.perf_counter()
        s = self.settings
        question = question_stage.clean_question(question, s.max_question_chars)
        history = question_stage.clean_history(history, s.max_question_chars)
        standalone = None
        if s.rewrite_followups:  # a follow-up that depends on the turns before it, made to stand alone (followup.py)
            call = (lambda system, user, schema: self._call(system, user, schema, "rewrite")) if s.rewrite_with_reader else None
            rewritten = followup.standalone(question, history, call=call, budget=s.prompt_token_budget,
                                            max_chars=s.max_question_chars, subjects=followup.subject_words(self.documents))
            standalone = rewritten.question if rewritten else None
        query = standalone or question
        sources = self.allowed(flt, session)
        t1 = time.perf_counter()
        hits = self._search(query, session, sources=sources)
        whole = self._whole(query, session, sources) if self._reads_whole else None
        ordered = whole is not None
        if whole is None and self._reads_passages and hits:
            # The best document whole when it fits the reader's budget, else the best passages whole until it.
            whole = self._whole(query, session, frozenset({hits[0].chunk.source}), s.reader_tokens)
            ordered = True
            if whole is None:
                chosen = self._passages(hits, query)
                sentences, later = self.retriever.sentences(query, chosen, sum(len(h.chunk.text) for h in chosen),
                                                            session, usable=ground.can_ground(query)), []
        if whole is not None:
            sentences, later = whole, []
        elif not ordered:
            # Sentences lacking a number, version or name the question states can ground no answer (ground.py):
            # they are shown only when too few others are left.
            sentences, *later = self.retriever.sentence_pages(query, hits, s.reader_sentences, session, s.reader_chars,
                                                              usable=ground.can_ground(query), pages=s.reader_looks)
        # "Near the question" is judged on every retrieved sentence, so it does not depend on how many the
        # reader is shown nor on the order they are shown in.
        nearest = self.retriever.nearest(query, hits)
        t2 = time.perf_counter()
        return Prepared(question, query, standalone, tuple(hits), tuple(sentences), t0, nearest,
                        {"rewrite": t1 - t0, "retrieve": t2 - t1}, tuple(tuple(page) for page in later), whole is not None,
                        ordered)

    def _passages(self, hits: Sequence[Hit], query: str) -> list[Hit]:
        """The best retrieved chunks, in rank order, while their text fits the reader's budget and its prompt (the
        first one whatever its length): whole passages, as a reader needs them, rather than scattered sentences."""
        room = self.settings.prompt_token_budget - question_stage.estimate_tokens(
            prompts.READER_SYSTEM + prompts.READER_USER.format(sentences="", question=query))
        budget = min(self.settings.reader_tokens, int(room / PASSAGE_MARGIN))
        chosen, used = [], 0
        for h in hits:
            n = question_stage.estimate_tokens(h.chunk.text)
            if chosen and used + n > budget:
                break
            chosen.append(h)
            used += n
        return chosen

    @property
    def _local(self) -> bool:
        """Whether answers come from the in-process llama.cpp server (whose KV state can be saved and loaded)."""
        return self._llm_override is None and self.settings.llm_backend == "local"

    @cached_property
    def _reads_whole(self) -> bool:
        """settings.reader_whole, unless the packaged reader in use reads a whole article badly (weights.READERS)."""
        s = self.settings
        if s.reader_whole and self._local and not s.gguf_path:
            from .weights import READERS

            return s.reader not in READERS or READERS[s.reader].reads_whole
        return s.reader_whole

    @cached_property
    def _reads_passages(self) -> bool:
        """settings.reader_tokens is on, unless the packaged reader in use reads long text badly (weights.READERS):
        it then gets the few best sentences."""
        s = self.settings
        if s.reader_tokens and self._local and not s.gguf_path:
            from .weights import READERS

            return s.reader not in READERS or READERS[s.reader].reads_whole
        return bool(s.reader_tokens)

    def _whole(self, query: str, session: MemoryIndex | None, sources: frozenset[str] | None,
               max_tokens: int | None = None) -> list[Sentence] | None:
        """Every sentence of the documents searched, best first (as the reader's sentences are ranked, those that
        can ground an answer first), when the reader's prompt holds them all with the question (and, with
        max_tokens, their text is at most that many tokens); None otherwise."""
        budget = self.settings.prompt_token_budget if max_tokens is None else min(max_tokens, self.settings.prompt_token_budget)
        corpus = (c for c in self.index.chunks if c.source not in self.quarantined)
        n = chars = 0
        for c in chain(corpus, session.chunks if session is not None else ()):
            if sources is None or c.source in sources:
                n, chars = n + 1, chars + len(c.text)
                if chars > WHOLE_CHARS_PER_TOKEN * budget:
                    return None  # far too long, found without going through a large corpus's every chunk
        if not n:
            return None
        hits = self._search(query, session, n, sources)
        ranked = self.retriever.sentences(query, hits, chars, session, usable=ground.can_ground(query))  # all of them
        text = self._whole_text(ranked)
        user = prompts.READER_USER.format(sentences=text, question=query)
        fits = (question_stage.estimate_tokens(prompts.READER_SYSTEM) + question_stage.estimate_tokens(user)
                <= self.settings.prompt_token_budget) and (max_tokens is None or question_stage.estimate_tokens(text) <= max_tokens)
        return ranked if ranked and fits else None

    def _call(self, system: str, user: str, schema: dict, name: str, until: Deadline | None = None) -> str:
        """One reader call through LCEL (prompt | model); JSON-schema output where the server has it. `until` is
        the question's LLM deadline: it bounds this call, its retries and the calls after it."""
        return self._invoke(system, user, schema, name, until).text

    def _invoke(self, system: str, user: str, schema: dict, name: str, until: Deadline | None = None,
                top_logprobs: int = 0, stop: Sequence[str] = ()) -> Reply:
        """_call, and with top_logprobs > 0 the reply's token log-probabilities where the server gives them.
        `stop` ends a JSON-schema reply early (prompts.READER_STOP); a plain-text reply is never cut."""
        from langchain_core.messages import HumanMessage, SystemMessage

        until = until or Deadline(self.settings.llm_timeout)
        if until.passed():
            raise backend_error(TimeoutError("deadline"), self.settings)
        model = self.llm
        if self._json_output:
            # In the request body, not as ChatOpenAI's response_format: that routes a stream through the SDK's
            # beta parsing helper, whose import costs ~0.75 s of the first question (and the server is the same).
            fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
            model = model.bind(extra_body={"response_format": fmt}, **({"stop": list(stop)} if stop else {}))
        if top_logprobs and self._logprobs:
            model = model.bind(logprobs=True, top_logprobs=top_logprobs)
        try:
            with llm_deadline(until):
                msg = model.invoke([SystemMessage(system), HumanMessage(user)])
            until.start()  # a model that is not an HTTP client (tests, a custom LangChain model): from its first reply
        except ReplyTooLong:
            return Reply("")  # a server that ignores max_tokens: read no further, like a reply cut at max_tokens
        except QABotError:
            raise
        except Exception as exc:
            if is_context_overflow(exc):  # a safety net under check_prompt_budget's estimate
                raise InvalidQuestion("the question with its follow-up context is too long for the reader: "
                                      "ask a shorter question") from None
            if top_logprobs and self._logprobs and _bad_request(exc):
                self._logprobs = False  # a server without logprobs: the check's verdict is taken as written
                log.warning("the LLM server rejected logprobs; taking the check's verdict as written")
                return self._invoke(system, user, schema, name, until, stop=stop)
            if self._json_output and _bad_request(exc):
                self._json_output = False  # a server without JSON-schema output: plain text, parsed leniently
                log.warning("the LLM server rejected response_format; falling back to plain answers")
                return self._invoke(system, user, schema, name, until, top_logprobs, stop)
            raise backend_error(exc, self.settings) from exc
        self._warm = True  # the reader answers: a question asked without warm_up warms it too
        content = msg.content if isinstance(msg.content, str) else str(msg.content)
        meta = msg.response_metadata or {}
        logprobs = meta.get("logprobs") if top_logprobs else None
        tokens = tuple(logprobs.get("content") or ()) if isinstance(logprobs, dict) else ()
        return Reply(content[: self.settings.max_reader_chars], tokens, str(meta.get("finish_reason") or ""))

    def _read(self, p: Prepared, until: Deadline | None = None) -> ground.ReaderDraft:
        user = self._reader_user(p)
        question_stage.check_prompt_budget((prompts.READER_SYSTEM, user), self.settings.prompt_token_budget)
        reply = self._invoke(prompts.READER_SYSTEM, user, prompts.READER_SCHEMA, "reader", until, stop=prompts.READER_STOP)
        # A reply cut at max_tokens may stop inside its answer ('{"answer": "2.7 billion, 9% of'): not an answer.
        return ground.parse_reader(reply.text, cut_at_stop=reply.finish != "length")

    def _reader_user(self, p: Prepared) -> str:
        """The reader's prompt after its fixed instructions: the sentences (a corpus read whole in document
        order, else best first), then the question."""
        sentences = (self._whole_text(p.sentences) if p.whole else self._passage_text(p.sentences) if p.ordered
                     else self._numbered(p.sentences))
        hint = prompts.YES_NO_HINT if ground.is_yes_no(p.query) else ""
        return prompts.READER_USER.format(sentences=sentences, question=p.query + hint)

    def _whole_text(self, sentences: Sequence[Sentence]) -> str:
        """A text read whole as the reader sees it: in document order, the same text before every question."""
        return self._numbered(sorted(sentences, key=lambda x: (x.source, x.start)))

    def _passage_text(self, sentences: Sequence[Sentence]) -> str:
        """Passages as the reader sees them: each document's sentences in document order, the documents in the
        order of their best sentence."""
        rank: dict[str, int] = {}
        for x in sentences:
            rank.setdefault(x.source, len(rank))
        return self._numbered(sorted(sentences, key=lambda x: (rank[x.source], x.start)))

    def _labelled(self, sentences: Sequence[Sentence]) -> bool:
        """Whether the reader and the check see each sentence's document label: with one document (and nothing
        uploaded among the shown sentences) the label only names that document again."""
        return len(self.documents) > 1 or len({s.source for s in sentences}) > 1

    def _numbered(self, sentences: Sequence[Sentence]) -> str:
        """The reader's sentences, best first (small readers favour the first ones), numbered from 1; with
        several documents a sentence is preceded by its label (title and heading, where the release, version
        or date a question names is often written) unless the sentence before had the same one."""
        labelled = self._labelled(sentences)
        lines, last = [], None
        for i, s in enumerate(sentences, 1):
            if labelled and s.label and s.label != last:
                lines.append(prompts.label_line(s.label))
                last = s.label
            lines.append(prompts.SENTENCE_LINE.format(n=i, text=" ".join(s.text.split())))
        return "\n".join(lines)

    def _check(self, found: ground.Grounded, p: Prepared, until: Deadline | None = None, *,
               system: str | None = None, user: str | None = None) -> tuple[str, float | None]:
        """The check's verdict on the found answer and, where the server gives log-probabilities, how likely
        its "yes" was against "no". system/user replace the shipped prompts (benchmarks/check_separation.py)."""
        evidence = " ".join(found.text.split())
        if found.label and self._labelled(p.sentences):  # the check sees the label when the reader saw it
            evidence = f"{prompts.label_line(found.label, max_chars=None)} {evidence}"
        prompt = (user or prompts.CHECK_USER).format(evidence=evidence, question=p.query, answer=found.answer)
        reply = self._invoke(system or prompts.CHECK_SYSTEM, prompt, prompts.CHECK_SCHEMA, "check", until,
                             top_logprobs=ground.TOP_LOGPROBS)
        return _verdict(reply.text), ground.yes_probability(reply.logprobs)

    def _confirmed(self, found: ground.Grounded, p: Prepared, until: Deadline | None = None) -> bool:
        return ground.check_passes(*self._check(found, p, until), self.settings.check_min_yes)

    def _document(self, session: MemoryIndex | None):
        return lambda source: self.document_text(source, session)

    # --- public API -----------------------------------------------------------------------------------
    def ask(self, question: str, *, history: Sequence[tuple[str, str]] = (), session: MemoryIndex | None = None,
            source: str | None = None, since: str | None = None, until: str | None = None) -> Answer:
        """Answer one question, from the documents the filter lets through (source: a file name, glob, publisher
        or URL host; since/until: yyyy-mm-dd, inclusive; undated documents fail since/until). Raises
        InvalidQuestion (a ValueError) for bad input, FilterError (one) for a filter that is malformed or matches
        no document, BackendError when the LLM server fails, CorpusError when the corpus cannot be read."""
        return self.ask_stream(question, history=history, session=session, source=source, since=since,
                               until=until).answer()

    def ask_stream(
        self, question: str, *, history: Sequence[tuple[str, str]] = (), session: MemoryIndex | None = None,
        source: str | None = None, since: str | None = None, until: str | None = None,
    ) -> AnswerStream:
        """The answer as a stream: the verified answer text as soon as it is verified, then the final Answer
        (authoritative). Nothing the reader wrote is shown before the grounding rules (and the check) accept it.
        A bad filter is raised by the iteration, like a bad question."""
        return AnswerStream(self._counted(question, history, session, (source, since, until)))

    def allowed(self, flt: Filter, session: MemoryIndex | None = None) -> frozenset[str] | None:
        """The documents a filter lets through (filters.allowed_sources over the corpus and this chat's added
        documents, which have no date); None for no filter."""
        if not flt:
            return None
        metadata = {**self.metadata, **{src: Metadata() for src in (session.texts if session is not None else ())}}
        return allowed_sources(flt, metadata)

    def _counted(self, question: str, history: Sequence[tuple[str, str]], session: MemoryIndex | None,
                 filter_args: tuple = (None, None, None)) -> Iterator[str | Stage | Answer]:
        """_answer, counted as a question in flight: add_document embeds only in the gaps between questions."""
        with self._idle:
            self._answering += 1
        try:
            yield from self._answer(question, history, session, Filter.of(*filter_args))
        finally:
            with self._idle:
                self._answering -= 1
                self._idle.notify_all()

    def _answer(self, question: str, history: Sequence[tuple[str, str]], session: MemoryIndex | None,
                flt: Filter = Filter()) -> Iterator[str | Stage | Answer]:
        """The one answer path: prepare (clean, rewrite, filter, retrieve) -> read -> ground -> check -> Answer.
        An overview request ("Summarize the article") is answered from the documents' own sentences instead."""
        cleaned = question_stage.clean_question(question, self.settings.max_question_chars)
        if summary_stage.is_overview(cleaned):
            yield from self._overview(cleaned, session, self.allowed(flt, session))
            return
        with self._lock:  # one llama.cpp context: one question at a time
            p = self._prepare(question, history, session, flt)
            s = self.settings
            uploads = session is not None and bool(session.chunks)  # a chat's own documents: not worth saving
            if p.whole and not uploads and self._local:
                self._hold_whole(p)  # once per text held: the "read" timing below stays the question's own
            else:
                self._holding = ""  # this question's prompt takes the reader's slot
            timings = dict(p.timings)  # this answer's own: Prepared stays as retrieval left it
            if not p.sentences or p.nearest < s.min_similarity:
                # Nothing in the corpus is even near the question: refuse without the reader.
                timings["total"] = time.perf_counter() - p.t0
                # Nothing is listed as "closest passages" either: they would be unrelated.
                yield self._refuse(p, timings, "nothing in the documents is near the question", off_topic=True)
                return
            t = time.perf_counter()
            until = Deadline(s.llm_timeout)  # the reader, its retries and the check, all together
            yield Stage("reading", len(p.hits))
            read: list[Sentence] = []  # every sentence the reader was shown, over all its looks
            first: tuple = ()  # the first look's draft and why it gave no answer: a refusal reports those
            timings["read"] = 0.0
            # With reader_looks > 1, a look that gives no verified answer (the reader finds none, grounding or the
            # check rejects it) is followed by one at the next-best sentences (opt-in: settings.py says why).
            for look in p.looks():
                if look is not p:
                    yield Stage("reading again", len(p.hits))
                    t = time.perf_counter()
                read += look.sentences
                draft = self._read(look, until)
                timings["read"] += time.perf_counter() - t
                found, why = ground.ground(draft, p.query, look.sentences, self._document(session))
                found, why = sanitize.screen(found, why, p.query, self._document(session))  # J2/J3: data is no answer
                if found is not None and s.reader_check and ground.needs_check(p.query, found):
                    yield Stage("checking")
                    t = time.perf_counter()
                    if not self._confirmed(found, look, until):
                        found, why = None, "the check found the evidence does not answer this exact question"
                    timings["check"] = timings.get("check", 0.0) + time.perf_counter() - t
                if found is not None:
                    break
                first = first or (draft, why)
            timings["generate"] = timings["read"] + timings.get("check", 0.0)
            timings["total"] = time.perf_counter() - p.t0
            if found is None:
                draft, why = first
                if len(read) > len(p.sentences):
                    why += "; nor did the next-best sentences give one"
                yield self._refuse(p, timings, why, draft, tuple(read))
                return
            spans = [(found.start, found.end, found.text), *found.headings]
            citations = tuple(self._citation(n, found.source, a, b, t, session) for n, (a, b, t) in enumerate(spans, 1))
            text = f"{cite.sentence_case(found.answer)} " + "".join(f"[{c.n}]" for c in citations)
            yield text
            yield Answer(p.question, text, False, citations, p.hits, timings, p.standalone, _draft_json(draft),
                         evidence=tuple(read))

    def _overview(self, question: str, session: MemoryIndex | None, sources: frozenset[str] | None = None
                  ) -> Iterator[str | Answer]:
        """A short summary whose every sentence is a cited sentence of the documents (summary.overview): the
        chat's documents first, then the corpus's; quarantined documents and those a filter leaves out omitted."""
        t0 = time.perf_counter()
        docs = [(src, title_from_name(src.removeprefix(SESSION_PREFIX)), text)
                for src, text in (session.texts.items() if session is not None else ())]
        docs += [(src, self.titles.get(src, ""), doc.text) for src, doc in self.documents.items()
                 if src not in self.quarantined]
        docs = [d for d in docs if sources is None or d[0] in sources]
        excerpts = summary_stage.overview(docs)
        titles = {src: title for src, title, _ in docs}
        timings = {"summary": time.perf_counter() - t0}
        timings["total"] = timings["summary"]
        if not excerpts:
            yield Answer(question, self.refusal, True, (), (), timings, reason="no document has sentences to summarise")
            return
        citations = tuple(self._citation(n, x.source, x.start, x.end, x.text, session, titles[x.source])
                          for n, x in enumerate(excerpts, 1))
        several = len({x.source for x in excerpts}) > 1
        lines = [(f"{c.title}: " if several and c.title else "") + f"{' '.join(c.text.split())} [{c.n}]"
                 for c in citations]
        more = len(docs) - summary_stage.SUMMARY_DOCUMENTS
        if several and more > 0:
            lines.append(f"(and {more} more document{'s' if more > 1 else ''})")
        text = ("\n" if several else " ").join(lines)
        yield text
        yield Answer(question, text, False, citations, (), timings)

    def _citation(self, n: int, source: str, start: int, end: int, text: str, session: MemoryIndex | None,
                  title: str = "") -> Citation:
        """A citation with its document's title, publication date and (PDF) page."""
        doc = self.documents.get(source) or (session.documents.get(source) if session is not None else None)
        if doc is None:
            return Citation(n, source, start, end, text, title)
        start, end = sanitize.data_free_span(doc.text, start, end)  # J2: a summary's sentence without planted markers
        return Citation(n, source, start, end, doc.text[start:end], self.titles.get(source) or doc.meta.title or title,
                        doc.meta.date, doc.page(start))

    def _refuse(self, p: Prepared, timings: dict, why: str, draft: ground.ReaderDraft | None = None,
                read: tuple[Sentence, ...] = (), off_topic: bool = False) -> Answer:
        """A refusal; `read` is every sentence the reader was shown (its evidence), none when off topic."""
        return Answer(p.question, self.refusal, True, (), () if off_topic else p.hits, timings, p.standalone,
                      _draft_json(draft) if draft else "", evidence=read, reason=why)

    def retrieve(self, query: str, k: int | None = None, session: MemoryIndex | None = None, *,
                 source: str | None = None, since: str | None = None, until: str | None = None) -> list[Hit]:
        """The ranked passages for a query, as the bot retrieves them (hybrid BM25 + dense), from the documents
        the filter lets through (as `ask`; FilterError when it is malformed or matches nothing)."""
        query = question_stage.clean_question(query, self.settings.max_question_chars)
        return self._search(query, session, k, self.allowed(Filter.of(source, since, until), session))

    def _search(self, query: str, session: MemoryIndex | None, k: int | None = None,
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

    def session_documents(self, session: MemoryIndex | None) -> list[str]:
        """The names of the documents added to a session, in the order they were added."""
        return [src.removeprefix(SESSION_PREFIX) for src in (session.texts if session is not None else ())]

    def remove_document(self, session: MemoryIndex | None, name: str) -> MemoryIndex | None:
        """A new session without the added document `name` (None when none is left); CorpusError when the
        session has no document of that name."""
        if name not in self.session_documents(session):
            raise CorpusError(f"{name} is not among this chat's added documents.")
        rest = session.without(SESSION_PREFIX + name)
        return rest if rest.texts else None

    def add_document(self, session: MemoryIndex | None, name: str, data: bytes,
                     progress: Callable[[int, int], None] | None = None) -> MemoryIndex:
        """A new session index with this document added (kept in memory, for that session only).
        Embedding runs in batches in the gaps between questions, so a large document never holds up anyone's
        answer; progress(done, total) is called after each batch. Raises CorpusError for a document the
        upload policy (check_upload) or ingest refuses."""
        s = self.settings
        names = [src.removeprefix(SESSION_PREFIX) for src in (session.texts if session is not None else ())]
        base = check_upload(s, name, len(data), names)
        try:
            doc = document_from_bytes(SESSION_PREFIX + base, data, limits=s.upload_limits, ocr=self.ocr)  # in a child process
        except CorpusError as exc:  # ingest names the internal source; the user knows the file by its own name
            raise CorpusError(f"{base} cannot be added: {str(exc).removeprefix(SESSION_PREFIX + base + ': ')}") from None
        if s.quarantine_injections and (found := instructions_to_assistant(doc.text)):
            raise CorpusError(f"{base}: gives an AI assistant instructions ({found[:80]!r}), so it was not added")
        chunks = chunk_text(doc.text, doc.source, max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                            count_tokens=self.embedder.count_tokens)
        # Batches of similar length pad less (as sentence-transformers sorts within one call); order restored below.
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].text))
        step, parts = max(1, s.embed_batch_size), []
        for i in range(0, len(order), step):
            self._questions_done(UPLOAD_YIELD_SECONDS)
            parts.append(self.embedder.embed([chunks[j].text for j in order[i:i + step]]))
            if progress is not None:
                progress(min(i + step, len(order)), len(order))
        vectors = np.empty((len(order), parts[0].shape[1]), dtype=np.float32) if parts else self.embedder.embed([])
        if parts:
            vectors[order] = np.vstack(parts)
        return (session or MemoryIndex()).with_document(doc, chunks, vectors)

    def _questions_done(self, timeout: float) -> None:
        """Wait until no question is being answered (at most `timeout` seconds, so a steady stream of
        questions slows uploads down but never stops them)."""
        with self._idle:
            self._idle.wait_for(lambda: self._answering == 0, timeout=timeout)

    def close(self) -> None:
        self._provider.close()

    def __enter__(self) -> "QABot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bad_request(exc: BaseException) -> bool:
    """An HTTP 400 from the server, however the client wrapped it (langchain-openai re-raises openai's
    BadRequestError as its OpenAIInvalidRequestError, whose name no longer says so)."""
    return any(getattr(e, "status_code", None) == 400 or any(c.__name__ == "BadRequestError" for c in type(e).__mro__)
               for e in exception_chain(exc))


def _verdict(raw: str) -> str:
    """The check's verdict: "yes" only from a JSON object whose verdict is yes, or a bare "yes"; anything
    else (a reply that prints its instructions, quoting both verdicts) is a no."""
    text = raw.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return "yes" if str(obj.get("verdict", "")).strip().lower() == "yes" else "no"
    return "yes" if text.lower().rstrip(".!") == "yes" else "no"


def _draft_json(draft: ground.ReaderDraft) -> str:
    return json.dumps({"answer": draft.answer, "sentence": draft.sentence}, ensure_ascii=False)
