"""Question stage: every text a user hands the bot (the question, each earlier question of a conversation, and so
the follow-up rewritten from them) passes the same checks and clean-up here before anything else sees it, and
the reader's prompt is held to a token budget before it is sent.

Why one module: a check that only the question went through was a hole. The history of `/ask` and of the chat
reached the reader unchecked (7.3 KB held the only model slot for 8 s; 48 KB surfaced llama.cpp's raw
"tokens exceeds the context" error; ESC, BEL, RLO and NUL reached the prompt). `normalise` is the one entry:
the CLI, the chat, the HTTP API and QABot call it, so every face refuses the same input with the same words.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from . import cite
from .errors import InvalidQuestion
from .settings import Settings

# Words that point back to something said before. A question using one and naming nothing itself is a
# follow-up; one that names its subject ("How much revenue did Alibaba Cloud make?") stands alone.
_BACK_REFERENCE = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|there|then|"
    r"the (company|firm|unit|group|business|model|product|deal|plan|move|spin-?off|release|version|licen[cs]e))\b",
    re.IGNORECASE,
)


def strip_invisible(text: str) -> str:
    """text without control and format characters (C*: NUL, ESC, BEL, bidi overrides, zero-width, Unicode tags,
    lone surrogates), which carry no meaning in a question and can hide instructions; tabs and newlines become
    spaces, white space is collapsed."""
    kept = []
    for ch in text:
        if ch in "\t\n\r\v\f":
            kept.append(" ")
        elif not unicodedata.category(ch).startswith("C"):
            kept.append(ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip()


class QuestionTooLong(InvalidQuestion):
    """A question (or a history turn's) over the character limit: the one refusal a face can advise on in words
    ("shorten it"), so it is told apart by type, not by its message."""


def normalise(question: object, history: object = None, settings: Settings | None = None, *,
              what: str = "the question") -> tuple[str, tuple[tuple[str, str], ...]]:
    """(question, history) as every face and QABot hand them on: clean_question and clean_history under
    settings.max_question_chars (Settings' default without settings). InvalidQuestion (QuestionTooLong for a
    text over the limit) with a one-line message naming what is wrong; `what` names the question in it (the
    HTTP API says "the question (the last user message)"). Idempotent: normalising the result changes nothing,
    so a face may pass on what it got and the library may clean it again."""
    max_chars = Settings.max_question_chars if settings is None else settings.max_question_chars
    return clean_question(question, max_chars, what), clean_history(history, max_chars)


def sentence(exc: InvalidQuestion) -> str:
    """The refusal as a sentence (capital first letter, final period), for faces whose messages are sentences
    (the HTTP API's error bodies, the chat's note); the CLI prints it after "qa-bot: error: " as it is."""
    text = str(exc).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def clean_question(question: object, max_chars: int, what: str = "the question") -> str:
    """The question with invisible characters removed and white space collapsed; InvalidQuestion when it is not
    a string, is empty, or is longer than max_chars (QuestionTooLong). `what` names it in messages ("the
    question of history turn 2")."""
    if not isinstance(question, str):
        raise InvalidQuestion(f"{what} must be text")
    if len(question) > max_chars:
        raise QuestionTooLong(f"{what} is too long ({len(question):,} characters; the limit is {max_chars:,})")
    cleaned = strip_invisible(question)
    if not cleaned:
        raise InvalidQuestion(f"{what} is empty")
    if not re.search(r"\w", cleaned):
        raise InvalidQuestion(f"{what} has no words in it")
    return cleaned


def clean_history(history: object, max_chars: int) -> tuple[tuple[str, str], ...]:
    """Earlier (question, answer) turns, oldest first, each question checked and cleaned like a question (the
    follow-up rewrite carries it to the reader). Turns with a blank question are dropped; answers are kept as
    given (they never reach the reader). InvalidQuestion names the turn at fault."""
    if history is None:
        return ()
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise InvalidQuestion("the history must be a list of (question, answer) pairs")
    out = []
    for i, turn in enumerate(history, 1):
        if not isinstance(turn, Sequence) or isinstance(turn, (str, bytes)) or len(turn) != 2:
            raise InvalidQuestion(f"history turn {i} must be a (question, answer) pair")
        q, a = turn
        if isinstance(q, str) and not strip_invisible(q) and len(q) <= max_chars:
            continue  # an empty turn carries nothing
        out.append((clean_question(q, max_chars, f"the question of history turn {i}"), a if isinstance(a, str) else ""))
    return tuple(out)


def is_followup(question: str) -> bool:
    names = cite.proper_names(question) - {question.split()[0].lower()} if question.split() else set()
    return bool(_BACK_REFERENCE.search(question)) and not names and len(question.split()) <= 14


def standalone_question(question: str, history: Sequence[tuple[str, str]]) -> str | None:
    """A follow-up rewritten to stand alone by carrying the previous question's subject; None when the
    question already stands alone (no rewrite, no cost). Deterministic on purpose: small models
    rewriting questions change their meaning too often to be trusted. The history must be clean_history's."""
    if not history or not is_followup(question):
        return None
    previous = next((q for q, _ in reversed(history) if q and q.strip()), "")
    if not previous:
        return None
    return f"{question.rstrip()} (following up on: {previous.strip()})"


# --- token budget ------------------------------------------------------------------------------------------------
_PIECE = re.compile(r"[A-Za-z]+|\d|\s+|[^\sA-Za-z\d]")


def estimate_tokens(text: str) -> int:
    """A generous estimate of the tokens a BPE reader (Qwen, Llama) makes of text, without its tokenizer: a
    letter run is one token per 4 letters or part of it (common words are one, junk like "xq7zv" is several),
    each digit one (Qwen splits numbers into digits), a letter of another script one, each other character one
    per 2 UTF-8 bytes or part of it (emoji, symbols), runs of white space one. English prose comes out at ~1.3x Qwen's real count."""
    n = 0
    for m in _PIECE.finditer(text):
        piece = m.group(0)
        if piece[0].isspace():
            n += 1 if len(piece) > 1 else 0  # a single space is part of the next token
        elif piece[0].isascii() and piece[0].isalpha():
            n += -(-len(piece) // 4)
        elif piece.isalpha():  # a letter of another script: CJK characters are mostly one token each
            n += 1
        else:
            n += -(-len(piece.encode("utf-8", "surrogatepass")) // 2)
    return n


def check_prompt_budget(parts: Sequence[str], budget: int) -> int:
    """The estimated tokens of a prompt's parts; InvalidQuestion when over `budget` (what is left of one
    server slot's context after the reply), instead of the server's raw "N tokens exceeds the context" error."""
    n = sum(estimate_tokens(p) for p in parts)
    if n > budget:
        raise InvalidQuestion(f"the question with its follow-up context is too long for the reader (about {n:,} "
                              f"tokens; the limit is {budget:,}): ask a shorter question")
    return n
