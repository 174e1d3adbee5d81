"""QABot: the public API, and the orchestrator over four parts. One question walks through them in `_answer`:

    question.py  the question and history checked and cleaned (normalise, as every face checks them)
    context.py   -> made to stand alone, retrieved (corpus.py: the documents, their index and retriever.Retriever),
                    and the sentences the reader is shown chosen (a whole text, whole passages, or the best ones)
    reader/      -> the reader's short answer and the sentence it rests on (JSON-schema output)
    ground.py    -> grounding rules in code; then, where they ask for it, the reader's yes/no check
                 -> Answer, citing the exact supporting sentence(s)

`ask_stream` returns an AnswerStream (qa_bot.types) over that one path, `ask` drains it, and `chain` is the
same thing as a LangChain runnable (qa_bot.lc.QAChain(bot), which depends on this module, not the reverse).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from . import cite, ground, prompts, sanitize
from . import summary as summary_stage
from .context import Context, Prepared
from .corpus import Corpus
from .filters import Filter
from .index import MemoryIndex, DenseIndex
from .ingest import Document, Metadata, title_from_name
from .llm import Deadline
from .question import normalise
from .reader import Reader, make_reader
from .settings import Settings
from .types import Answer, AnswerStream, Citation, Hit, Sentence, Stage
from .uploads import SESSION_PREFIX, Uploads, remove, session_names

WHOLE_PRIMER = "What does it say?"  # the question the corpus is first read whole with: only the text before it is kept


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
        self._lock = threading.Lock()  # one llama.cpp context: one question at a time
        self.corpus = Corpus(settings, embedder, self._lock)
        self.reader: Reader = make_reader(settings, llm)
        self.context = Context(self.corpus, self.reader)
        self.uploads = Uploads(settings, lambda: self.corpus.embedder, self.corpus.ocr)

    # --- the corpus's parts, as the faces and reports read them --------------------------------------------
    embedder = property(lambda self: self.corpus.embedder)
    documents = property(lambda self: self.corpus.documents, doc="Each corpus document by its source name.")
    titles = property(lambda self: self.corpus.titles)
    metadata = property(lambda self: self.corpus.metadata)
    quarantined = property(lambda self: self.corpus.quarantined)
    index = property(lambda self: self.corpus.index)
    retriever = property(lambda self: self.corpus.retriever)
    skipped = property(lambda self: self.corpus.skipped, lambda self, v: setattr(self.corpus, "skipped", v),
                       doc="Corpus files that could not be used, with reasons (watch.py updates it).")
    corpus_version = property(lambda self: self.corpus.version, doc="How many times reload() swapped in a changed corpus.")
    ocr = property(lambda self: self.corpus.ocr)
    llm = property(lambda self: self.reader.model, doc="The reader's LangChain chat model.")

    def catalog(self) -> list[dict]:
        return self.corpus.catalog()

    def build_index(self, force: bool = True, progress=None) -> DenseIndex:
        return self.corpus.build_index(force, progress)

    def reload(self, documents: Sequence[Document], skipped: Sequence = (), progress=None) -> DenseIndex:
        """Answer from these documents from now on (Corpus.reload). A corpus read whole is read by the next
        question (Reader.hold), not here: a folder that changes often would otherwise be re-read at every change."""
        return self.corpus.reload(documents, skipped, progress)

    @property
    def refusal(self) -> str:
        return prompts.refusal_text(len(self.documents))

    def model_info(self) -> dict:
        """Which reader answers: backend, model name, file and its sha256 (for eval reports)."""
        return self.reader.info()

    def readiness(self) -> dict:
        """What /readyz reports, loading nothing: ready once the index is loaded and the reader has answered (warm_up
        or a question), with the corpus's size and the index version (the corpus hash its manifest records)."""
        index, docs = self.corpus.loaded("index"), self.corpus.loaded("documents")
        info = getattr(index, "info", None) or {}
        return {"ready": index is not None and self.reader.warm, "index_loaded": index is not None,
                "reader_warm": self.reader.warm, "documents": None if docs is None else len(docs),
                "chunks": None if index is None else len(index.chunks),
                "index_version": (info.get("corpus_sha256") or "")[:16] or None,
                "corpus_version": self.corpus.version}

    def warm_up(self) -> "QABot":
        """Load the corpus, index, embedder and reader now rather than on the first question. The reader starts
        in a second thread: llama.cpp loads its weights outside the GIL while the embedder loads here. The reader
        then reads its fixed instructions (or loads its saved state of them), and a corpus read whole."""
        errors: list[BaseException] = []

        def start_reader():
            try:
                with self._lock:  # a question asked meanwhile waits, then reads alone on primed slots
                    self.reader.prime()
            except BaseException as exc:  # re-raised below, in the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=start_reader, daemon=True)
        thread.start()
        hits = self.retriever.search("warm up")
        self.retriever.sentences("warm up", hits, 1)
        _ = self.retriever.bm25
        thread.join()
        if errors:
            raise errors[0]
        if self.reader.reads_whole:  # the corpus read whole now, and kept, so the first question does not read it
            with self._lock:
                p = self.context.prepare(WHOLE_PRIMER, (), None)
                if p.whole and len({x.source for x in p.sentences}) == len(self.documents):  # not one document of it
                    self.reader.hold(p, WHOLE_PRIMER)
        self.reader.warm = True
        return self

    # --- questions ------------------------------------------------------------------------------------
    def ask(self, question: str, *, history: Sequence[tuple[str, str]] = (), session: MemoryIndex | None = None,
            source: str | None = None, since: str | None = None, until: str | None = None) -> Answer:
        """Answer one question, from the documents the filter lets through (source: a file name, glob, publisher
        or URL host; since/until: yyyy-mm-dd, inclusive; undated documents fail since/until). Raises
        InvalidQuestion (a ValueError) for bad input, FilterError (one) for a filter that is malformed or matches
        no document, BackendError when the LLM server fails, CorpusError when the corpus cannot be read."""
        return self.ask_stream(question, history=history, session=session, source=source, since=since,
                               until=until).answer()

    def ask_stream(self, question: str, *, history: Sequence[tuple[str, str]] = (), session: MemoryIndex | None = None,
                   source: str | None = None, since: str | None = None, until: str | None = None) -> AnswerStream:
        """The answer as a stream: the verified answer text as soon as it is verified, then the final Answer
        (authoritative). Nothing the reader wrote is shown before the grounding rules (and the check) accept it.
        A bad filter is raised by the iteration, like a bad question."""
        return AnswerStream(self._counted(question, history, session, (source, since, until)))

    def _counted(self, question: str, history: Sequence[tuple[str, str]], session: MemoryIndex | None,
                 filter_args: tuple) -> Iterator[str | Stage | Answer]:
        """_answer, counted as a question in flight: an upload embeds only in the gaps between questions."""
        with self.uploads.question():
            yield from self._answer(question, history, session, Filter.of(*filter_args))

    def _answer(self, question: str, history: Sequence[tuple[str, str]], session: MemoryIndex | None,
                flt: Filter = Filter()) -> Iterator[str | Stage | Answer]:
        """The one answer path: prepare (clean, rewrite, filter, retrieve) -> read -> ground -> check -> Answer.
        An overview request ("Summarize the article") is answered from the documents' own sentences instead."""
        question, history = normalise(question, history, self.settings)
        if summary_stage.is_overview(question):
            yield from self._overview(question, session, self.corpus.allowed(flt, session))
            return
        with self._lock:
            p = self.context.prepare(question, history, session, flt)
            s = self.settings
            uploads = session is not None and bool(session.chunks)  # a chat's own documents: not worth holding
            if p.whole and not uploads and self.reader.holds_texts:
                self.reader.hold(p, WHOLE_PRIMER)  # once per text held: the "read" timing below stays the question's own
            else:
                self.reader.holding = ""  # this question's prompt takes the reader's slot
            timings = dict(p.timings)  # this answer's own: Prepared stays as retrieval left it
            if not p.sentences or p.nearest < s.min_similarity:
                timings["total"] = time.perf_counter() - p.t0
                # Nothing in the corpus is even near the question: refused without the reader, and with nothing
                # listed as "closest passages" either (they would be unrelated).
                yield self._refuse(p, timings, "nothing in the documents is near the question", off_topic=True)
                return
            t = time.perf_counter()
            until = Deadline(s.llm_timeout)  # the reader, its retries and the check, all together
            yield Stage("reading", len(p.hits))
            read: list[Sentence] = []  # every sentence the reader was shown, over all its looks
            first: tuple = ()  # the first look's draft and why it gave no answer: a refusal reports those
            timings["read"] = 0.0
            document = self.document(session)
            # With reader_looks > 1, a look that gives no verified answer (the reader finds none, grounding or the
            # check rejects it) is followed by one at the next-best sentences (opt-in: settings.py says why).
            for look in p.looks():
                if look is not p:
                    yield Stage("reading again", len(p.hits))
                    t = time.perf_counter()
                read += look.sentences
                draft = self.reader.read(look, until)
                timings["read"] += time.perf_counter() - t
                found, why = ground.ground(draft, p.query, look.sentences, document)
                found, why = sanitize.screen(found, why, p.query, document)  # data planted in a page is no answer
                if found is not None and s.reader_check and ground.needs_check(p.query, found):
                    yield Stage("checking")
                    t = time.perf_counter()
                    if not self.reader.confirmed(found, look, until):
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
        doc = self.corpus.document(source, session)
        if doc is None:
            return Citation(n, source, start, end, text, title)
        start, end = sanitize.data_free_span(doc.text, start, end)  # a summary's sentence without planted markers
        return Citation(n, source, start, end, doc.text[start:end], self.titles.get(source) or doc.meta.title or title,
                        doc.meta.date, doc.page(start))

    def _refuse(self, p: Prepared, timings: dict, why: str, draft: ground.ReaderDraft | None = None,
                read: tuple[Sentence, ...] = (), off_topic: bool = False) -> Answer:
        """A refusal; `read` is every sentence the reader was shown (its evidence), none when off topic."""
        return Answer(p.question, self.refusal, True, (), () if off_topic else p.hits, timings, p.standalone,
                      _draft_json(draft) if draft else "", evidence=read, reason=why)

    def prepare(self, question: str, history: Sequence[tuple[str, str]] = (), session: MemoryIndex | None = None,
                flt: Filter = Filter()) -> Prepared:
        """What the reader would be shown for this question (Context.prepare): for benchmarks and tests."""
        return self.context.prepare(*normalise(question, history, self.settings), session, flt)

    def document(self, session: MemoryIndex | None = None) -> Callable[[str], str]:
        """source -> the document's text (a chat's added ones first), as grounding reads it."""
        return lambda source: self.corpus.text(source, session)

    # --- retrieval and documents ----------------------------------------------------------------------
    def retrieve(self, query: str, k: int | None = None, session: MemoryIndex | None = None, *,
                 source: str | None = None, since: str | None = None, until: str | None = None) -> list[Hit]:
        """The ranked passages for a query, as the bot retrieves them (hybrid BM25 + dense), from the documents
        the filter lets through (as `ask`; FilterError when it is malformed or matches nothing)."""
        query = normalise(query, None, self.settings)[0]
        return self.corpus.search(query, session, k, self.corpus.allowed(Filter.of(source, since, until), session))

    def document_text(self, source: str, session: MemoryIndex | None = None) -> str:
        return self.corpus.text(source, session)

    def session_documents(self, session: MemoryIndex | None) -> list[str]:
        """The names of the documents added to a session, in the order they were added."""
        return session_names(session)

    def remove_document(self, session: MemoryIndex | None, name: str) -> MemoryIndex | None:
        """A new session without the added document `name` (None when none is left); CorpusError if it has none."""
        return remove(session, name)

    def add_document(self, session: MemoryIndex | None, name: str, data: bytes,
                     progress: Callable[[int, int], None] | None = None) -> MemoryIndex:
        """A new session index with this document added (Uploads.add: embedded between questions)."""
        return self.uploads.add(session, name, data, progress)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "QABot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _draft_json(draft: ground.ReaderDraft) -> str:
    return json.dumps({"answer": draft.answer, "sentence": draft.sentence}, ensure_ascii=False)


__all__ = ["QABot", "Metadata", "WHOLE_PRIMER"]
