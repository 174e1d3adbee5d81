"""Question stage: validate and clean what a user typed before anything else sees it."""
from __future__ import annotations

import re
import unicodedata

from .errors import InvalidQuestion

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
