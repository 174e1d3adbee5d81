"""The data that flows between pipeline stages: small, frozen, JSON-friendly."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """A passage of one corpus file. Invariant: file_text[start:end] == text."""

    id: str  # content hash of source + span + text; stable across runs
    source: str  # file name relative to the corpus folder
    start: int
    end: int
    text: str


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
    date: str = ""  # the document's publication date, when known


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
    evidence: tuple[Any, ...] = ()  # the sentences the reader was shown (retrieve.Sentence)
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
