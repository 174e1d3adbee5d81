"""Answer stage: validate the question, build the prompt, and turn a verified draft into an Answer."""
from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from . import cite, prompts
from .errors import InvalidQuestion
from .types import Answer, Citation, Hit

# Control and format characters (C*: NUL, escapes, bidi overrides, zero-width, Unicode tags,
# lone surrogates) carry no meaning in a question and can hide instructions; tabs and newlines become spaces.
def clean_question(question: object, max_chars: int) -> str:
    """The question with invisible characters removed and white space collapsed; InvalidQuestion when
    it is not a string, is empty, or is longer than max_chars."""
    if not isinstance(question, str):
        raise InvalidQuestion("the question must be text")
    if len(question) > max_chars:
        raise InvalidQuestion(f"the question is too long ({len(question):,} characters; the limit is {max_chars:,})")
    kept = []
    for ch in question:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r\v\f":
            kept.append(" ")
        elif not cat.startswith("C"):
            kept.append(ch)
    cleaned = re.sub(r"\s+", " ", "".join(kept)).strip()
    if not cleaned:
        raise InvalidQuestion("the question is empty")
    if not re.search(r"\w", cleaned):
        raise InvalidQuestion("the question has no words in it")
    return cleaned


def format_passages(hits: Sequence[Hit]) -> str:
    return "\n".join(prompts.PASSAGE_LINE.format(n=i + 1, text=" ".join(h.chunk.text.split())) for i, h in enumerate(hits))


def refusal(question: str, hits: Sequence[Hit], timings: dict, standalone: str | None, draft: str = "") -> Answer:
    return Answer(question, prompts.REFUSAL, True, (), tuple(hits), timings, standalone, draft)


def finalize(
    question: str,
    draft: str,
    context: Sequence[Hit],
    best_quote: tuple[int, str] | None,
    *,
    retrieved: Sequence[Hit],
    timings: dict,
    standalone: str | None,
    query: str,
) -> Answer:
    """Verify the draft against the passages the LLM was shown (context, numbered from 1); the refusal
    when nothing survives. `retrieved` is the full ranked list, kept for display and evaluation."""
    v = cite.verify(
        draft, query, [h.chunk.text for h in context], relevant=[True] * len(context), best_quote=best_quote
    )
    if not v.text:
        return refusal(question, retrieved, timings, standalone, draft)
    citations = tuple(
        Citation(n + 1, context[i].chunk.source, context[i].chunk.start, context[i].chunk.end, context[i].chunk.text)
        for n, i in enumerate(v.cited)
    )
    return Answer(question, v.text, False, citations, tuple(retrieved), timings, standalone, draft)
