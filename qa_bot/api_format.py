"""The OpenAI chat.completions wire format of qa_bot.api, as pure functions: a request body in (its shape checked
here, its question and history by question.normalise, as every face does), chat.completion objects, stream chunks
and OpenAI-shaped errors out. No server and no bot here: qa_bot.api serves them.
"""
from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from .errors import BackendError, FilterError, InvalidQuestion, QABotError
from .filters import FIELDS as FILTER_FIELDS, Filter
from .question import normalise, sentence
from .settings import Settings
from .types import Answer

MODEL_ID = "qa-bot"
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
QUESTION = "the question (the last user message)"  # how the API's messages name the question


class ApiError(Exception):
    """An error response in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _content_text(content: Any, i: int) -> str:
    """A message's content as text: a string, null, or a list of {"type": "text", "text": ...} parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise ApiError(400, f"messages[{i}].content: only text parts are supported",
                               param=f"messages[{i}].content")
        return "\n".join(parts)
    raise ApiError(400, f"messages[{i}].content must be a string or a list of text parts",
                   param=f"messages[{i}].content")


def parse_filter(body: dict) -> dict[str, str]:
    """The request's filter fields (each a string or null) as keyword arguments for QABot.ask, checked with the
    library's Filter (a bad date, since after until: 400 naming the field). Whether it matches any document is
    the bot's to say (FilterError while answering, also a 400)."""
    found: dict[str, str] = {}
    for name in FILTER_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiError(400, f"'{name}' must be a string or null.", param=name, code="invalid_filter")
        if value.strip():
            found[name] = value
    for name in ("since", "until"):  # one date at a time first, so that `param` names the bad one
        try:
            Filter.of(**{name: found.get(name)})
        except FilterError as exc:
            raise ApiError(400, str(exc), param=name, code="invalid_filter") from None
    try:
        Filter.of(**found)
    except FilterError as exc:  # since after until
        raise ApiError(400, str(exc), param="since", code="invalid_filter") from None
    return found


def parse_chat_request(body: Any, settings: Settings | None = None) -> tuple[str, tuple[tuple[str, str], ...], bool]:
    """(question, history, stream) from a chat.completions request body, the question and history normalised
    (question.normalise under settings, the bot's); ApiError when it is unusable."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if model is not None and model != MODEL_ID:
        raise ApiError(404, f"The model {str(model)[:100]!r} does not exist; this server has one model, {MODEL_ID!r}.",
                       param="model", code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty array of {role, content} objects.", param="messages")
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ApiError(400, f"messages[{i}] must be an object with 'role' and 'content'.", param=f"messages[{i}]")
        role = m.get("role")
        if role not in _ROLES:
            raise ApiError(400, f"messages[{i}].role must be one of: {', '.join(sorted(_ROLES))}.",
                           param=f"messages[{i}].role")
        turns.append((role, _content_text(m.get("content"), i)))
    users = [i for i, (role, _) in enumerate(turns) if role == "user"]
    if not users:
        raise ApiError(400, "There is no user message: the last user message is the question.", param="messages")
    last = users[-1]
    pairs: list[tuple[str, str]] = []  # (question, answer) pairs: a user turn and the assistant turn after it
    pending: str | None = None
    for role, text in turns[:last]:
        if role == "user":
            pending = text
        elif role == "assistant" and pending is not None:
            pairs.append((pending, text))
            pending = None
    try:
        question, history = normalise(turns[last][1], pairs, settings, what=QUESTION)
    except InvalidQuestion as exc:
        raise ApiError(400, sentence(exc), param="messages") from None
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false.", param="stream")
    return question, history, stream


def is_json_type(content_type: str) -> bool:
    """Whether a Content-Type header says JSON: application/json or application/*+json, parameters aside."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def citations_json(answer: Answer) -> list[dict]:
    return [{"n": c.n, "source": c.source, "title": getattr(c, "title", "") or "", "date": getattr(c, "date", "") or "",
             "page": getattr(c, "page", None), "start": c.start, "end": c.end, "text": c.text} for c in answer.citations]


def completion_json(answer: Answer, *, id: str, created: int) -> dict:
    """A chat.completion object for a finished Answer (never its unverified draft)."""
    return {
        "id": id, "object": "chat.completion", "created": created, "model": MODEL_ID, "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "citations": citations_json(answer), "abstained": bool(answer.abstained),
    }


def chunk_json(*, id: str, created: int, delta: dict, finish_reason: str | None = None, **extra) -> dict:
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}], **extra}


def sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def error_for(exc: BaseException) -> ApiError:
    """The response for an exception raised while answering."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, FilterError):  # well formed (parse_filter checked) but it matches no document
        return ApiError(400, str(exc), code="invalid_filter")
    if isinstance(exc, InvalidQuestion):  # a sentence, as parse_chat_request's refusals of the same kind
        return ApiError(400, sentence(exc), param="messages")
    if isinstance(exc, BackendError):  # its message may name the LLM server's address: logged here, not sent
        return ApiError(503, "The language model is not available right now; please try again later.",
                        type="server_error", code="backend_unavailable")
    if isinstance(exc, QABotError):  # its message is fit for a user by contract
        return ApiError(500, str(exc), type="server_error")
    return ApiError(500, "The server had an error while answering; please try again.", type="server_error")
