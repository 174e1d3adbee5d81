"""Errors the library raises; the edges (CLI, UI, API) turn them into one-line messages."""


class QABotError(Exception):
    """Base class: str(error) is a message fit to show a user."""


class InvalidQuestion(QABotError, ValueError):
    """The question is empty, too long, or has nothing left after clean-up."""


class CorpusError(QABotError):
    """The corpus folder is missing or holds no readable document."""


class BackendError(QABotError):
    """The LLM server failed: refused, timed out, or died mid-answer."""


class QuestionFileError(QABotError, ValueError):
    """An evaluation question file is missing, unreadable, or not in the format of docs/question_format.md."""


class FilterError(InvalidQuestion):
    """A --source/--since/--until filter is malformed or matches no document (bad input, like a bad question)."""
