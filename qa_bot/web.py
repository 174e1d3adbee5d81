"""The served app's HTTP guards, below Gradio (Starlette/ASGI only; qa_bot.ui wires them in):

- RequestGuard, an ASGI middleware on every route: a request body over the cap gets 413, whether it says
  its length (Content-Length) or streams it (counted as it arrives; nothing past the cap is read), and the
  file route never serves a pending upload.
- UploadStore and its route, which replaces Gradio's /gradio_api/upload: one file a request, checked by
  the library's upload policy (pipeline.check_upload) before it is stored, under a random folder name (the path is
  known only to its uploader), deleted when add_document takes it or after the TTL, with a cap on what
  may wait on disk across all sessions.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Sequence, TextIO

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .errors import CorpusError, QABotError
from .settings import Settings

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows: stores are then never swept by another process
    fcntl = None

log = logging.getLogger(__name__)

UPLOAD_PATH = "/gradio_api/upload"
FILE_ROUTES = ("/gradio_api/file=", "/file=")
STORE_PREFIX = "qa_bot-uploads-"
OWNER_FILE = ".owner"  # in each store's folder: its server's pid, locked (flock) for as long as that server runs


class BusyUploads(QABotError):
    """Too much is already uploaded and waiting; try again later."""


@dataclass(frozen=True)
class Pending:
    created: float  # time.monotonic()
    size: int


class UploadStore:
    """Uploaded files waiting for add_document, in a folder of their own below Gradio's upload folder (Gradio
    accepts a file input only from there). Thread-safe."""

    def __init__(self, parent: str | Path, settings: Settings):
        self.settings = settings
        self._parent = Path(parent)
        self._parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(self._parent, settings.upload_ttl)
        self._owner: TextIO | None = None
        self.root = self._make_root()
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        # Expired uploads go even when nobody uploads again (a sweep on upload alone would leave them).
        self._sweeper = threading.Thread(target=self._sweep_loop, name="upload-sweeper", daemon=True)
        self._sweeper.start()

    def _make_root(self) -> Path:
        """A new folder of this store, owned by this process: its OWNER_FILE holds the pid and stays locked
        while the process lives, so another server's start-up sweep (_remove_stale) leaves it alone."""
        # Made under another name and renamed once its owner file is locked: a sweep never sees it unlocked.
        making = Path(tempfile.mkdtemp(prefix=".making-" + STORE_PREFIX, dir=self._parent))
        owner = open(making / OWNER_FILE, "w")
        if fcntl is not None:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a folder just made: nobody else holds it
        owner.write(f"{os.getpid()}\n")
        owner.flush()
        root = self._parent / f"{STORE_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
        os.rename(making, root)
        if self._owner is not None:
            self._owner.close()
        self._owner = owner
        return root.resolve()

    def put(self, name: str, data: bytes) -> str:
        """Store one upload (already checked against the upload policy); its path. BusyUploads when the
        uploads waiting across all sessions are at their cap."""
        s = self.settings
        self.sweep()
        with self._lock:
            if (len(self._pending) >= s.upload_total_files
                    or sum(p.size for p in self._pending.values()) + len(data) > s.upload_total_bytes):
                raise BusyUploads("Too many uploads are waiting to be added; please try again in a few minutes.")
            if not (self.root / OWNER_FILE).is_file():  # deleted under us (by hand, or an older server's sweep)
                log.warning("upload folder %s was deleted by another process; making a new one", self.root)
                self._pending.clear()
                self.root = self._make_root()
            folder = self.root / secrets.token_hex(16)
            folder.mkdir(mode=0o700)
            path = folder / safe_name(name)
            path.write_bytes(data)
            self._pending[str(path)] = Pending(time.monotonic(), len(data))
        return str(path)

    def take(self, path: str) -> tuple[str, bytes]:
        """(name, bytes) of a pending upload, which is deleted: each upload is taken once, and only a path
        this store handed out is accepted (nothing else is ever read or deleted)."""
        key = str(Path(str(path)).resolve()) if path else ""
        with self._lock:
            entry = self._pending.pop(key, None)
        if entry is None:
            raise CorpusError("That upload is not available (it expired or was already added); please upload "
                              "the file again.")
        p = Path(key)
        try:
            return p.name, p.read_bytes()
        finally:
            shutil.rmtree(p.parent, ignore_errors=True)

    def contains(self, path: str) -> bool:
        """True when `path` is inside this store's folder (whether or not the file still exists)."""
        try:
            return Path(os.path.realpath(path)).is_relative_to(self.root)
        except (ValueError, OSError):
            return False

    def sweep(self) -> int:
        """Delete uploads older than the TTL; how many."""
        cutoff = time.monotonic() - self.settings.upload_ttl
        with self._lock:
            old = [k for k, p in self._pending.items() if p.created < cutoff]
            for k in old:
                del self._pending[k]
        for k in old:
            shutil.rmtree(Path(k).parent, ignore_errors=True)
        return len(old)

    def _sweep_loop(self) -> None:
        while not self._closed.wait(min(60.0, self.settings.upload_ttl / 2)):
            self.sweep()

    def close(self) -> None:
        """Delete every pending upload and the store's folder (at shutdown)."""
        self._closed.set()
        with self._lock:
            self._pending.clear()
            shutil.rmtree(self.root, ignore_errors=True)
            if self._owner is not None:
                self._owner.close()
                self._owner = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)


def safe_name(name: str) -> str:
    """A file name any file system takes, keeping the suffix: "my notes (2).md" -> "my_notes__2_.md"."""
    p = Path(name)
    stem = re.sub(r"[^\w.-]", "_", p.stem)[:100] or "document"
    return stem + re.sub(r"[^\w.]", "_", p.suffix)[:16]


def _remove_stale(parent: Path, ttl: float) -> None:
    """Stores left by servers that did not shut down cleanly. A store whose OWNER_FILE lock can be taken has no
    live owner: its uploads can never be added, so it goes. A live server's store is never touched, however old
    (issue 45, W2: a second server deleted a running one's pending uploads, and its later uploads failed). A store
    without an owner file (an older version's) goes once it is older than the TTL, as before."""
    cutoff = time.time() - ttl
    for d in parent.glob(".making-" + STORE_PREFIX + "*"):  # a store's folder before its rename: a moment's life
        try:
            if d.is_dir() and not d.is_symlink() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass
    for d in parent.glob(STORE_PREFIX + "*"):
        try:
            if not d.is_dir() or d.is_symlink():
                continue
            owner = d / OWNER_FILE
            if owner.is_file():
                if fcntl is None:
                    continue  # no way to know whether its owner lives: leave it
                with open(owner) as f:
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:  # held: its server is running
                        continue
                    shutil.rmtree(d, ignore_errors=True)
            elif d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def upload_route(store: UploadStore, check) -> Route:
    """POST /gradio_api/upload in Gradio's protocol (multipart field "files"; answers a JSON list of paths), one
    file a request. check(name, size) is the library's upload policy: it raises CorpusError with the reason."""

    async def upload(request: Request) -> Response:
        try:
            form = await request.form(max_files=1, max_fields=1)
        except Exception as exc:  # Starlette's 400 for a malformed body or a second file
            detail = getattr(exc, "detail", "") or "malformed multipart body"
            return PlainTextResponse(f"Upload one document at a time ({detail}).", status_code=400)
        try:
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]  # not a plain text field
            if len(files) != 1:
                return PlainTextResponse('Send one file, in the multipart field "files".', status_code=400)
            f = files[0]
            name = check(f.filename or "", f.size or 0)
            data = await f.read(store.settings.max_upload_bytes + 1)
            check(name, len(data))  # the size the client declared is not trusted
            path = store.put(name, data)
        except BusyUploads as exc:
            return PlainTextResponse(str(exc), status_code=429, headers={"Retry-After": "60"})
        except QABotError as exc:
            status = 413 if "too large" in str(exc) else 400
            return PlainTextResponse(str(exc), status_code=status)
        finally:
            await form.close()
        return JSONResponse([path])

    return Route(UPLOAD_PATH, upload, methods=["POST"])


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether a Host header ("127.0.0.1:7860", "[::1]:7860", "localhost") names an allowed host: one of patterns,
    exactly (case aside), or under a "*.domain" pattern, or anything for "*"."""
    host = host.strip().lower()
    if host.startswith("["):  # [IPv6]:port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        host = host.partition(":")[0]
    host = host.rstrip(".")
    if not host:
        return False
    for p in patterns:
        if p == "*" or host == p or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


class HostGuard:
    """ASGI middleware: a request whose Host header is not allowed gets 400, on every route (the chat, /config,
    /gradio_api/*, /v1). A page on another site whose DNS name is rebound to 127.0.0.1 sends its own name as Host
    (issue 45, A5: `Host: evil.example` was served /config and /gradio_api/info)."""

    def __init__(self, app, allowed: Sequence[str]):
        self.app, self.allowed = app, tuple(allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if not host_allowed(host, self.allowed):
                log.info("refused a request for host %r (not in QA_BOT_ALLOWED_HOSTS)", host[:100])
                if scope["type"] == "websocket":
                    return await send({"type": "websocket.close", "code": 1008})
                return await _plain(send, 400, "Invalid Host header: this server answers only to the host names in "
                                               "its QA_BOT_ALLOWED_HOSTS setting.", code="invalid_host")
        return await self.app(scope, receive, send)


class RequestGuard:
    """ASGI middleware: 413 for a body over max_bytes on any route; 404 for the file route into `store`."""

    def __init__(self, app, max_bytes: int, store: UploadStore | None = None):
        self.app, self.max_bytes, self.store = app, max_bytes, store

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.store is not None and self._into_store(self.store, scope):
            return await _plain(send, 404, "Not found.")
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return await _plain(send, 400, "Invalid Content-Length header.")
            if int(declared) > self.max_bytes:
                return await self._too_large(send)
        seen, over, started = 0, False, False

        async def counted_receive():
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # a chunked body past the cap: the app sees the client leave
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if over and not started:
                return  # whatever the app answers to a cut-off body, the client gets the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._too_large(send)

    def _into_store(self, store: UploadStore, scope) -> bool:
        path = urllib.parse.unquote(scope.get("path", ""))
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        for prefix in FILE_ROUTES:
            if path.startswith(prefix):
                return store.contains(path[len(prefix):])
        return False

    async def _too_large(self, send) -> None:
        await _plain(send, 413, f"The request body is over the {self.max_bytes:,}-byte limit.",
                     code="request_too_large")


async def _plain(send, status: int, message: str, code: str | None = None) -> None:
    """An error in the OpenAI shape the /v1 API uses, so every client sees one format; the connection closes
    (an unread body is not drained)."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
