"""The data that flows between pipeline stages (small, frozen, JSON-friendly), the stream one answer comes
in, and `Bot`, the interface the edges (CLI, UI, API, LangChain, eval) use: QABot and the tests' FakeBot."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from .settings import Settings


@dataclass(frozen=True)
class Chunk:
    """A passage of one corpus file. Invariant: file_text[start:end] == text."""

    id: str  # content hash of source + span + text; stable across runs
    source: str  # file name relative to the corpus folder
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Sentence:
    """One sentence of a document, as the reader sees it. text == document[start:end]; context_start is
    where the sentence before it starts (a reader needs it for "the city", "it"), or start for the first."""

    source: str
    start: int
    end: int
    text: str
    context_start: int
    label: str  # document title and section heading, shown to the reader with the sentence
    score: float  # the ranking score (retrieve.Retriever.sentence_pages)
    similarity: float  # cosine of question and sentence embeddings
    headings: tuple[tuple[int, int], ...] = ()  # spans of the section headings in label, citable like the sentence
    about: str = ""  # what its document's metadata states (formats.Metadata.names): title, author, publisher, date
    # From its document's structure (structure.Structure): the span of its section (from the heading above it to
    # the next; the whole document when it has none) and of the document's lead sentence ((0, 0): none).
    section: tuple[int, int] = (0, 0)
    lead: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its cosine similarity to the question."""

    chunk: Chunk
    score: float

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {"source": c.source, "start": c.start, "end": c.end, "score": round(self.score, 4), "text": c.text}


@dataclass(frozen=True)
class Citation:
    """What an answer's [n] marker points to: the exact supporting sentence(s), file_text[start:end] == text."""

    n: int
    source: str
    start: int
    end: int
    text: str
    title: str = ""  # the document's title
    date: str = ""  # the document's publication date (yyyy-mm-dd), when known
    page: int | None = None  # the PDF page the span starts on; None for other formats


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # with [n] markers, or REFUSAL
    abstained: bool
    citations: tuple[Citation, ...] = ()
    retrieved: tuple[Hit, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    standalone_question: str | None = None  # the rewritten follow-up, when one was rewritten
    draft: str = ""  # what the reader wrote before verification: for eval reports and debugging, never shown
    evidence: tuple[Any, ...] = ()  # the sentences the reader was shown (Sentence)
    reason: str = ""  # why the answer was refused, when it was

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "abstained": self.abstained,
            "citations": [asdict(c) for c in self.citations],
            "retrieved": [h.to_dict() for h in self.retrieved],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "standalone_question": self.standalone_question,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Stage:
    """Progress of one answer, for displays: "reading" (`passages` = how many passages the reader was given),
    "reading again" (the first sentences gave no verified answer: the reader reads the next-best ones) or
    "checking" (the answer is being checked against its evidence)."""
    name: str
    passages: int = 0


class AnswerStream:
    """One answer as it is produced, in the manner of simonw/llm's Response. Iterating yields the verified
    text pieces as they are released and then the final Answer (authoritative; streaming consumers show the
    pieces and keep the Answer); `answer()` drains what is left and returns that Answer. Errors (bad question,
    backend down) are raised by the iteration, where they happen."""

    def __init__(self, pieces: Iterator[str | Stage | Answer]):
        self._pieces = iter(pieces)
        self._answer: Answer | None = None
        self.stage: Stage | None = None  # the latest progress report

    def __iter__(self) -> "AnswerStream":
        return self

    def __next__(self) -> str | Answer:  # an iterator like the generator it wraps: next(stream) works
        while isinstance(piece := self._take(), Stage):  # progress is for events(); plain iteration skips it
            pass
        return piece

    def events(self) -> Iterator[str | Stage | Answer]:
        """The pieces and the Answer as iteration gives them, with the Stage progress reports in between."""
        while True:
            try:
                yield self._take()
            except StopIteration:
                return

    def _take(self) -> str | Stage | Answer:
        piece = next(self._pieces)
        if isinstance(piece, Answer):
            self._answer = piece
        elif isinstance(piece, Stage):
            self.stage = piece
        return piece

    def close(self) -> None:
        """Stop producing: closes the generator behind the stream (the reader's LLM request ends with it)."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()

    def answer(self) -> Answer:
        for _ in self:
            pass
        if self._answer is None:
            raise RuntimeError("the answer stream ended without an Answer")
        return self._answer


@runtime_checkable
class Bot(Protocol):
    """What the edges call. `session` is an opaque per-chat object returned by add_document (documents added
    in one chat); errors are qa_bot.errors types: InvalidQuestion (and its FilterError), CorpusError, BackendError."""

    settings: Settings

    @property
    def refusal(self) -> str: ...

    def model_info(self) -> dict: ...

    def warm_up(self) -> Bot: ...

    def retrieve(self, query: str, k: int | None = None, session: Any = None, *, source: str | None = None,
                 since: str | None = None, until: str | None = None) -> list[Hit]: ...

    def document_text(self, source: str, session: Any = None) -> str: ...

    def add_document(self, session: Any, name: str, data: bytes, progress: Any = None) -> Any: ...  # progress(done, total)

    def remove_document(self, session: Any, name: str) -> Any: ...  # the session without it (None when empty)

    def session_documents(self, session: Any) -> list[str]: ...  # names of the documents added to a session

    # source/since/until: the filter (qa_bot.filters.Filter); FilterError when it is malformed or matches nothing
    def ask(self, question: str, *, history: Sequence[tuple[str, str]] = (), session: Any = None,
            source: str | None = None, since: str | None = None, until: str | None = None) -> Answer: ...

    def ask_stream(self, question: str, *, history: Sequence[tuple[str, str]] = (), session: Any = None,
                   source: str | None = None, since: str | None = None, until: str | None = None) -> AnswerStream: ...

    def close(self) -> None: ...
