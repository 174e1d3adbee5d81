"""An OpenAI-compatible HTTP API over a QABot, served beside the chat on the same host and port.

    GET  /v1/models             the corpus as one model, "qa-bot"
    GET  /v1/models/qa-bot
    POST /v1/chat/completions   non-streaming, or streaming (`"stream": true`: server-sent events)

The last user message is the question; the user/assistant turns before it are the history used to
rewrite follow-ups. Three optional top-level fields restrict the answer to some documents, as `qa-bot ask`'s
filter does: `source` (file name, glob, publisher or site host), `since` and `until` (YYYY-MM-DD, inclusive);
the openai client sends them with `extra_body={...}`. Other request fields (temperature, max_tokens, ...) are
accepted and ignored.
Answers carry [n] markers in the message content, and two extra top-level fields that OpenAI clients
ignore: `citations` ([{n, source, title, date, page, start, end, text}]) and `abstained` (bool). A streamed answer
carries them in its last chunk (the one with finish_reason "stop"), with `text`, the complete answer.
Only verified text is ever sent: the model's unverified draft never leaves the server.

Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}}: 400 bad request (empty or
over-long question, no user message, malformed JSON; a filter that is malformed or matches no document, code
"invalid_filter"), 401 missing or wrong API key, 404 unknown model or
path, 405 wrong method, 413 body over 256 KB, 415 a body not sent as application/json, 429 busy (with
Retry-After), 503 LLM backend down, 500 anything else (logged here; the response never holds a traceback).

API keys: QA_BOT_API_KEYS is a comma-separated list of keys, or the path of a file with one key per line
("#" comments allowed). When set, every /v1 request needs `Authorization: Bearer <key>`. Keys are never
logged. Unset, the API is open: keep the server on 127.0.0.1, or set keys before binding elsewhere.

Only Starlette is used here (no Gradio): `OpenAIAPI(bot).routes` can be served by any ASGI app;
qa_bot.ui adds them to the Gradio app.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# The wire format (qa_bot.api_format), importable from here as before the split.
from .api_format import (MODEL_ID, ApiError, chunk_json, citations_json, completion_json, error_for,  # noqa: F401
                         is_json_type, parse_chat_request, parse_filter, sse)
from .errors import QABotError
from .types import Answer

log = logging.getLogger(__name__)

KEYS_ENV = "QA_BOT_API_KEYS"
MAX_BODY_BYTES = 256 * 1024
MIN_KEY_CHARS = 16
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_END = object()  # end of a streamed answer


# ---------------------------------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------------------------------


def load_api_keys(value: str | None = None, *, env: dict[str, str] | None = None) -> tuple[str, ...]:
    """The API keys from `value`, or else from QA_BOT_API_KEYS: a comma-separated list, or the path of a file
    with one key per line (blank lines and "#" comments skipped). Empty or unset: no keys (the API is open).
    Raises QABotError, without echoing any key, for an unreadable file or a weak or malformed key."""
    raw = ((os.environ if env is None else env).get(KEYS_ENV, "") if value is None else value).strip()
    if not raw:
        return ()
    path = Path(raw).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise QABotError(f"{KEYS_ENV}: cannot read the key file {path} ({exc.__class__.__name__})") from None
        keys = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        where = f"the key file {path}"
    elif raw.startswith(("/", "~", "./", "../")):
        raise QABotError(f"{KEYS_ENV}: no key file at {path}")
    else:
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        where = KEYS_ENV
    if not keys:
        raise QABotError(f"{KEYS_ENV}: {where} holds no key")
    for i, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_CHARS or not all(33 <= ord(ch) <= 126 for ch in key):
            raise QABotError(
                f"{KEYS_ENV}: key {i} in {where} must be at least {MIN_KEY_CHARS} printable ASCII characters "
                "without spaces (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return tuple(dict.fromkeys(keys))


def exposure_warning(host: str, api: "OpenAIAPI | None") -> str | None:
    """A warning to log when the API is served beyond this machine without API keys."""
    if api is None or api.keys or host in LOOPBACK_HOSTS:
        return None
    return (f"the OpenAI-compatible API (/v1) is open to anyone who can reach {host}: "
            f"set {KEYS_ENV} before binding to an address other than 127.0.0.1")


# ---------------------------------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------------------------------


class _Slots:
    """At most `size` requests in flight (one answering, the rest waiting); beyond that, 429."""

    def __init__(self, size: int):
        self.size = size
        self.used = 0
        self.mean_seconds = 1.0  # running mean answer time, for Retry-After
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self.used >= self.size:
                return False
            self.used += 1
            return True

    def release(self, seconds: float | None = None) -> None:
        with self._lock:
            self.used -= 1
            if seconds is not None:
                self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * seconds

    def retry_after(self) -> int:
        """Seconds until a slot is likely free (the answer being written ends): the mean answer time, 1..60."""
        return int(max(1, min(60, round(self.mean_seconds))))


class OpenAIAPI:
    """The /v1 routes around `bot` (a QABot, or anything with its ask / ask_stream / settings).

    queue_size: requests allowed to wait while one is answered (the chat's queue bound); more get 429.
    api_keys: None reads QA_BOT_API_KEYS; () or [] means no key is needed."""

    def __init__(self, bot, *, queue_size: int = 8, api_keys: Sequence[str] | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES):
        self.bot = bot
        keys = load_api_keys() if api_keys is None else tuple(api_keys)
        self.keys = tuple(k.encode("utf-8") for k in keys)
        self.max_body_bytes = max_body_bytes
        self.slots = _Slots(queue_size + 1)
        self._limiter = anyio.CapacityLimiter(queue_size + 1)  # worker threads of this API, never more
        self._run_lock = threading.Lock()  # one answer at a time, like the chat's concurrency_limit=1
        self._tasks: set[asyncio.Future] = set()
        self.created = int(time.time())

    @property
    def routes(self) -> list[Route]:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
        return [
            Route("/v1/models", self._endpoint(self._models, "GET"), methods=methods),
            Route("/v1/models/{model:path}", self._endpoint(self._model, "GET"), methods=methods),
            Route("/v1/chat/completions", self._endpoint(self._chat, "POST"), methods=methods),
            Route("/v1/{rest:path}", self._endpoint(self._not_found, None), methods=methods),
        ]

    # --- plumbing shared by every route ---------------------------------------------------------------
    def _endpoint(self, handler, method: str | None):
        async def endpoint(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                if not self._authorized(request):
                    raise ApiError(401, "Missing or incorrect API key: send 'Authorization: Bearer <key>'.",
                                   code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
                if method is not None and request.method != method:
                    raise ApiError(405, f"{request.url.path} accepts {method} only.",
                                   code="method_not_allowed", headers={"Allow": method})
                response = await handler(request)
            except ApiError as exc:
                response = exc.response()
            except Exception:
                log.exception("API request %s %s failed", request.method, request.url.path)
                response = error_for(RuntimeError()).response()
            log.info("%s %s -> %d in %.3f s%s", request.method, request.url.path, response.status_code,
                     time.perf_counter() - t0, " (to the first piece of a stream)"
                     if isinstance(response, StreamingResponse) else "")
            return response

        return endpoint

    def _authorized(self, request: Request) -> bool:
        if not self.keys:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode("latin-1") if scheme.lower() == "bearer" else b""
        ok = False
        for key in self.keys:  # compare with every key, always: the time taken says nothing about which matched
            ok |= hmac.compare_digest(given, key)
        return ok and bool(given)

    async def _read_json(self, request: Request) -> Any:
        """The body parsed as JSON; 415 unless it is sent as JSON, 413 past max_body_bytes (declared or actual), 400
        when it is not JSON. A JSON body sent as text/plain is refused: a web page may post text/plain to any server
        without a CORS preflight, so a page the user visits could otherwise ask this local server questions."""
        if not is_json_type(request.headers.get("content-type", "")):
            raise ApiError(415, "Send the request body as JSON, with the header 'Content-Type: application/json'.",
                           code="unsupported_media_type")
        cap = self.max_body_bytes
        too_big = ApiError(413, f"The request body is over the {cap // 1024} KB limit.", code="request_too_large",
                           headers={"Connection": "close"})
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise ApiError(400, "Invalid Content-Length header.")
            if int(declared) > cap:
                raise too_big
        data = bytearray()
        try:
            async for chunk in request.stream():
                data += chunk
                if len(data) > cap:
                    raise too_big
        except ClientDisconnect:
            raise ApiError(400, "The request body was cut off.") from None
        try:
            return json.loads(bytes(data))
        except (ValueError, RecursionError):
            raise ApiError(400, "We could not parse the JSON body of your request: send a JSON object with "
                                "'model' and 'messages'.", code="invalid_json") from None

    def _busy(self) -> ApiError:
        return ApiError(429, "Too many requests are waiting; please try again shortly.", type="rate_limit_error",
                        code="rate_limit_exceeded", headers={"Retry-After": str(self.slots.retry_after())})

    # --- routes ----------------------------------------------------------------------------------------
    def _model_json(self) -> dict:
        return {"id": MODEL_ID, "object": "model", "created": self.created, "owned_by": "qa_bot"}

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [self._model_json()]})

    async def _model(self, request: Request) -> Response:
        name = request.path_params["model"]
        if name != MODEL_ID:
            raise ApiError(404, f"The model {name[:100]!r} does not exist; this server has one model, {MODEL_ID!r}.",
                           param="model", code="model_not_found")
        return JSONResponse(self._model_json())

    async def _not_found(self, request: Request) -> Response:
        raise ApiError(404, f"Unknown path {request.url.path[:200]}: this server has /v1/models and "
                            "/v1/chat/completions.", code="not_found")

    async def _chat(self, request: Request) -> Response:
        body = await self._read_json(request)
        question, history, stream = parse_chat_request(body, self.bot.settings)
        filters = parse_filter(body)
        if not self.slots.try_acquire():
            raise self._busy()
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if stream:
            return await self._stream(question, history, filters, ident, created)
        t0 = time.perf_counter()
        try:
            answer = await anyio.to_thread.run_sync(self._ask, question, history, filters, limiter=self._limiter)
        except Exception as exc:
            raise self._logged(exc) from None
        finally:
            self.slots.release(time.perf_counter() - t0)
        return JSONResponse(completion_json(answer, id=ident, created=created))

    def _ask(self, question: str, history: Sequence[tuple[str, str]], filters: dict[str, str]) -> Answer:
        with self._run_lock:
            return self.bot.ask(question, history=history, **filters)

    @staticmethod
    def _logged(exc: BaseException) -> ApiError:
        err = error_for(exc)
        if err.status >= 500 and not isinstance(exc, QABotError):
            log.error("answering failed", exc_info=exc)
        elif err.status >= 500:
            log.warning("answering failed: %s: %s", type(exc).__name__, exc)
        return err

    async def _stream(self, question: str, history: Sequence[tuple[str, str]], filters: dict[str, str], ident: str,
                      created: int) -> Response:
        """Run bot.ask_stream in one worker thread (it holds the bot's lock while it runs) that hands its pieces
        to the event loop. The first piece is awaited before answering, so that errors raised before any text
        (bad question, LLM server down) still get their proper status; later errors become an SSE error event.
        The slot is released by the worker when it finishes; a client that disconnects stops it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (server shutting down)
                stop.set()

        def work() -> None:
            t0 = time.perf_counter()
            last = _END  # the final Answer or the error: sent after the slot is free
            try:
                with self._run_lock:
                    pieces = self.bot.ask_stream(question, history=history, **filters)
                    try:
                        for item in pieces:
                            if stop.is_set():
                                break
                            if isinstance(item, Answer):
                                last = item
                            else:
                                put(item)
                    finally:
                        getattr(pieces, "close", lambda: None)()  # releases the bot's lock at once
            except Exception as exc:
                last = exc
            finally:
                self.slots.release(time.perf_counter() - t0)
                put(last)
                if last is not _END:
                    put(_END)

        task = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=self._limiter))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

        try:
            first = await queue.get()
        except BaseException:
            stop.set()
            raise
        if isinstance(first, BaseException):
            raise self._logged(first)
        if first is _END:
            raise self._logged(QABotError("The answer was cut off; please try again."))

        async def events():
            sent = ""
            item = first
            try:
                yield sse(chunk_json(id=ident, created=created, delta={"role": "assistant", "content": ""}))
                while True:
                    if isinstance(item, Answer):
                        rest = item.text[len(sent):] if item.text.startswith(sent) else ""
                        if not item.text.startswith(sent):
                            log.warning("streamed text was revised by the final verification; final chunk has it")
                        if rest:
                            yield sse(chunk_json(id=ident, created=created, delta={"content": rest}))
                        yield sse(chunk_json(id=ident, created=created, delta={}, finish_reason="stop",
                                             citations=citations_json(item), abstained=bool(item.abstained),
                                             text=item.text))
                        break
                    if isinstance(item, BaseException) or item is _END:
                        err = self._logged(item if isinstance(item, BaseException)
                                           else QABotError("The answer was cut off; please try again."))
                        yield sse(err.body())
                        break
                    if isinstance(item, str) and item:
                        sent += item
                        yield sse(chunk_json(id=ident, created=created, delta={"content": item}))
                    item = await queue.get()
                yield sse("[DONE]")
            finally:
                stop.set()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
