"""Reading a document under a hard budget, in a child process (issue 45, G2 and W1).

pypdf is pure Python and works a page's content stream in one call: an 86 KB PDF whose one string expands to
44 MB of text took 38 s and 593 MB, and nothing inside the call can be interrupted. A regular expression holds
the interpreter's lock for as long as it runs, so a slow one stalled every user of the server. Here such work
runs in a child Python process (`python -m qa_bot.extractor`, one at a time, kept for the next document) that
is killed when a document takes longer than its budget, or dies with it when it runs out of its memory limit:
the caller gets a CorpusError naming the file, and the next document starts a fresh child. The server's own
threads keep answering meanwhile; the calling thread only waits on a pipe.

Protocol: length-prefixed pickles on the child's stdin/stdout (both ends are this module; nothing from the
document is unpickled by the parent except what formats.extract_here returned in the child).
"""
from __future__ import annotations

import atexit
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .errors import CorpusError
from .formats import extract_here
from .formats_base import Extracted, Limits, file_suffix

if TYPE_CHECKING:
    from .ocr import OcrOptions

log = logging.getLogger("qa_bot")

_HEADER = struct.Struct("!Q")
START_SECONDS = 10.0  # added to a document's budget for a child that starts first (imports pypdf, trafilatura)
# A child's address space: room for the interpreter and its libraries, and for the text of one document in every
# form it passes through (bytes, pypdf's pieces, the joined str): past it the child fails, not this process.
BASE_MEMORY = 1024 * 1024 * 1024
MEMORY_PER_CHAR = 48


class _Child:
    """One child process and the pipes to it; replaced whenever one fails or overruns."""

    def __init__(self) -> None:
        env = dict(os.environ)
        here = str(Path(__file__).resolve().parent.parent)  # the child runs this very qa_bot, wherever it lives
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "qa_bot.extractor"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True)
        # Popen sets both when asked for pipes; typed here once rather than checked at every use
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        self.fresh = True

    def ask(self, request: bytes, until: float) -> bytes | None:
        """The reply to one request, or None when the child died or `until` (time.monotonic()) passed."""
        try:
            self.stdin.write(_HEADER.pack(len(request)) + request)
            self.stdin.flush()
        except OSError:  # BrokenPipeError: it died
            return None
        header = self._read(_HEADER.size, until)
        if header is None:
            return None
        return self._read(_HEADER.unpack(header)[0], until)

    def _read(self, n: int, until: float) -> bytes | None:
        fd, got = self.stdout.fileno(), 0
        parts: list[bytes] = []
        while got < n:
            left = until - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            piece = os.read(fd, min(n - got, 1 << 20))
            if not piece:  # end of file: it died
                return None
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        for f in (self.stdin, self.stdout):
            try:
                f.close()
            except OSError:
                pass


class Extractor:
    """Documents read one at a time by a child process that is kept between documents (thread-safe)."""

    def __init__(self) -> None:
        self._child: _Child | None = None
        self._lock = threading.Lock()

    def extract(self, source: str, data: bytes, limits: Limits, ocr=None) -> Extracted:
        request = pickle.dumps((source, data, limits, ocr), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._child is None:
                self._child = _Child()
            child = self._child
            t0 = time.monotonic()
            # The child stops itself at limits.seconds (between pypdf's steps); this is the hard stop past that.
            reply = child.ask(request, t0 + limits.seconds + 1.0 + (START_SECONDS if child.fresh else 0.0))
            child.fresh = False
            if reply is None:
                child.kill()
                self._child = None
                if time.monotonic() - t0 >= limits.seconds:
                    raise CorpusError(f"{source}: reading it took over {limits.seconds:g} s (the limit for one "
                                      "document, QA_BOT_EXTRACT_SECONDS); not read")
                raise CorpusError(f"{source}: reading it stopped the reader process (out of memory?); not read")
        kind, value, warnings = pickle.loads(reply)
        for message in warnings:  # the child's warnings (a date ignored, ...), as if this process had logged them
            log.warning("%s", message)
        if kind == "error":
            raise CorpusError(value)
        return value

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.kill()
                self._child = None


_SHARED = Extractor()
atexit.register(_SHARED.close)


def extract_in_child(source: str, data: bytes, limits: Limits, ocr=None) -> Extracted:
    """formats.extract_here(source, data, limits, ocr), run by the shared child process under limits.seconds."""
    return _SHARED.extract(source, data, limits, ocr)


# ---------------------------------------------------------------------------------------------------
# The child
# ---------------------------------------------------------------------------------------------------


class WarningCollector(logging.Handler):
    """Keeps the warnings logged while it is attached, for a process whose log the user does not see to hand
    them to the one that logs them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _limit_memory(limits: Limits) -> None:
    try:
        import resource

        cap = BASE_MEMORY + MEMORY_PER_CHAR * limits.max_chars
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    except (ImportError, ValueError, OSError):  # no such limit here: the time budget still holds
        pass


def _serve() -> None:
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library that prints cannot corrupt the replies
    collect = WarningCollector()
    qa_log = logging.getLogger("qa_bot")
    qa_log.addHandler(collect)
    qa_log.propagate = False
    while True:
        header = inp.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the parent closed the pipe
        source, data, limits, ocr = pickle.loads(inp.read(_HEADER.unpack(header)[0]))
        _limit_memory(limits)
        collect.messages = []
        reply: tuple[str, Extracted | str, list[str]]  # ("ok", the document's text, ...) or ("error", why, ...)
        try:
            reply = ("ok", extract_here(source, data, limits, ocr), collect.messages)
        except CorpusError as exc:
            reply = ("error", str(exc), collect.messages)
        except MemoryError:
            reply = ("error", f"{source}: too large to read (over the reader's memory limit); not read", [])
        except RecursionError:
            reply = ("error", f"{source}: not readable (its structure nests too deeply); not read", [])
        except Exception as exc:  # a parser's own failure on a malformed file is that file's problem only
            reply = ("error", f"{source}: not readable ({type(exc).__name__}); not read", collect.messages)
        body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_HEADER.pack(len(body)) + body)
        out.flush()


if __name__ == "__main__":
    _serve()


def extract(source: str, data: bytes, limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Extracted:
    """The readable text and metadata of one file, by its suffix. Raises CorpusError saying why a file cannot be
    used (empty, binary, not UTF-8, an HTML page with no article text, an encrypted PDF or a scanned one OCR
    cannot read, a damaged or oversized .docx/.epub/.odt; with limits, text over limits.max_chars or a reading
    over limits.seconds). `ocr`: how scanned PDF pages are read. With limits, a PDF (and with limits.isolate any
    file) is read in a child process (extract_in_child): the budget holds however the file was built, and the
    reading never holds this interpreter (its lock, its other threads: the server's other users)."""
    if limits is not None and (limits.isolate or file_suffix(source) == ".pdf"):
        return extract_in_child(source, data, limits, ocr)
    return extract_here(source, data, limits, ocr)
