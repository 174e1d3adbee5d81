"""A corpus folder that re-indexes itself: `app.py --watch` and `qa-bot index --watch`.

CorpusWatcher follows the folder with watchfiles (inotify on Linux; polling where there is none). A burst of
changes (a copy of many files, an editor's save) is taken as one once the folder has been quiet for
Settings.watch_debounce seconds; then the folder is walked as load_corpus walks it, but only files whose size,
modification time, inode or sidecar changed are read again (the others keep their parsed Document, so a scanned
PDF is not even re-hashed), and QABot.reload brings the index up to date through the incremental path (only
new chunk texts are embedded) and swaps it in between two answers: questions are answered throughout, from the
old corpus until the swap and from the new one after it.

A file is never indexed half-written: it is read only once it has been left alone for watch_debounce seconds,
when no process has it open for writing (Linux /proc), and when its size and time did not change while it was
read; a .docx/.epub/.odt/.pdf that still fails to open while it is young (a copy that stalled) is retried
rather than skipped. Until then the document's previous version (if any) goes on being served.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Protocol, Sequence

from .errors import CorpusError, QABotError
from .ingest import Document, Skipped, document_from_bytes, load_corpus, read_sidecar

if TYPE_CHECKING:
    from .ocr import OcrOptions
    from .settings import Settings
    from .vectordb import DenseIndex

log = logging.getLogger("qa_bot")

# A changed file that cannot be read yet (a DOCX or PDF whose copy stalled fails to open) is retried for this many
# seconds after its last change before it is skipped with its reason, as load_corpus skips a broken file.
RETRY_FOR = 30.0


@dataclass(frozen=True)
class Reindexed:
    """One re-index: which documents were added, changed or removed, and what it cost."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    documents: int
    chunks: int
    embedded: int | None  # chunks embedded (the rest reused); None when the store does not say
    seconds: float
    skipped: tuple[Skipped, ...] = ()

    def summary(self) -> str:
        parts = [f"{len(x)} {what}" for x, what in ((self.added, "added"), (self.changed, "changed"),
                                                     (self.removed, "removed")) if x]
        cost = "" if self.embedded is None else f", {self.chunks - self.embedded} reused, {self.embedded} embedded"
        return (f"re-indexed ({', '.join(parts) or 'metadata changed'}): {self.documents} documents, "
                f"{self.chunks} chunks{cost}, in {self.seconds:.1f} s")


@dataclass
class _Seen:
    key: tuple
    doc: Document | None = None
    error: CorpusError | None = None


class Reloadable(Protocol):
    """What the watcher uses of the bot it keeps up to date (a QABot): read-only members may be plain attributes."""

    skipped: list[Skipped]  # files that cannot be used, set when only they changed

    @property
    def settings(self) -> Settings: ...
    @property
    def documents(self) -> Mapping[str, Document]: ...
    @property
    def ocr(self) -> OcrOptions | None: ...
    def reload(self, documents: Sequence[Document], skipped: Sequence[Skipped] = ...) -> DenseIndex: ...


@dataclass
class CorpusWatcher:
    """Follows bot.settings.corpus_dir and reloads `bot` (a QABot) when documents are added, changed or removed.

    watcher = CorpusWatcher(bot).start()   # a daemon thread; watcher.stop() ends it
    watcher.sync()                         # or look at the folder once, now
    """

    bot: Reloadable
    on_reload: Callable[[Reindexed], None] | None = None
    last_changed: float = 0.0  # time.time() of the corpus's last change: its newest file at start, then each swap
    version: int = 0  # swaps done
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _pending: set[str] = field(default_factory=set)  # files seen changing, not yet read whole
    _dirty: bool = True  # look at the folder at the next tick (at start, and after a failed reload)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        s = self.bot.settings
        self.folder = Path(s.corpus_dir)
        self.quiet = float(s.watch_debounce)
        self.last_changed = newest_change(self.folder)

    # --- running -----------------------------------------------------------------------------------------
    def start(self) -> "CorpusWatcher":
        self._thread = threading.Thread(target=self._run_logged, name="corpus-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception as exc:  # the app goes on answering from the index it has; the log says why it stopped
            log.error("the corpus watcher stopped: %s: %s (the corpus is no longer followed)", type(exc).__name__, exc)

    def run(self) -> None:
        """Follow the folder until stop() (or Ctrl-C, in the main thread)."""
        from watchfiles import watch

        tick = max(50, int(self.quiet * 1000))
        log.info("following %s for changes", self.folder)
        # step: a burst ends after this much quiet; debounce: the longest one burst is gathered; rust_timeout and
        # yield_on_timeout: an idle tick every `quiet` seconds, to retry files seen half-written.
        for changes in watch(self.folder, watch_filter=_not_hidden, step=tick, debounce=max(1600, 4 * tick),
                             rust_timeout=tick, yield_on_timeout=True, stop_event=self._stop):
            if changes:
                self._dirty = True
            if self._dirty or self._pending:
                try:
                    self.sync()
                except QABotError as exc:  # an index that cannot be built now (disk, vector store): next change retries
                    self._dirty = True
                    log.warning("corpus changed but the index could not be updated: %s", exc)

    # --- one look at the folder ------------------------------------------------------------------------------
    def sync(self) -> Reindexed | None:
        """Read what changed in the folder and, when the documents differ from those the bot answers from, reload
        it (QABot.reload). Returns what was done, or None when nothing was."""
        with self._lock:
            return self._sync()

    def _sync(self) -> Reindexed | None:
        bot, s = self.bot, self.bot.settings
        t0 = time.perf_counter()
        self._dirty = False
        self._pending = set()
        writing = _Writers()
        current: dict[str, Document] = dict(bot.documents)
        root = self.folder.resolve()
        visited: set[str] = set()

        def read(path: Path, rel: str) -> Document | None:
            visited.add(rel)
            previous = current.get(rel)
            st = path.stat()
            side = path.with_name(path.stem + ".meta.json")
            key = (st.st_size, st.st_mtime_ns, st.st_ino, _stat_key(side))
            seen = self._seen.get(rel)
            if seen is not None and seen.key == key:
                if seen.error is not None:
                    raise seen.error
                return seen.doc
            young = time.time() - st.st_mtime  # negative for a file dated in the future: not taken as young
            if 0 <= young < self.quiet or writing.has(st):
                self._pending.add(rel)  # still being written: the previous version (if any) stays meanwhile
                return previous
            if st.st_size == 0:
                return self._remember(rel, key, error=CorpusError(f"{rel}: empty file"))
            if st.st_size > s.max_file_bytes:
                return self._remember(rel, key, error=CorpusError(
                    f"{rel}: {st.st_size / 1e6:.1f} MB is over the {s.max_file_bytes / 1e6:.0f} MB limit"))
            data = path.read_bytes()
            if _stat_key(path)[:3] != key[:3]:  # it changed while it was read
                self._pending.add(rel)
                return previous
            # The same bytes as the document served (the first look at a file the bot loaded; a file touched or
            # copied over with itself), its sidecar unchanged: taken as it is, not parsed (nor OCRed) again.
            same_side = seen is None or seen.key[3:] == key[3:]
            if previous is not None and same_side and previous.sha256 == hashlib.sha256(data).hexdigest():
                return self._remember(rel, key, doc=previous)
            try:
                doc = document_from_bytes(rel, data, read_sidecar(path, rel, root), limits=s.corpus_limits, ocr=bot.ocr)
            except CorpusError as exc:
                if 0 <= young < RETRY_FOR:  # a copy that stalled mid-way fails to open: look again before giving up
                    self._pending.add(rel)
                    log.debug("%s cannot be read yet (%s); retrying", rel, exc)
                    return previous
                return self._remember(rel, key, error=exc)
            return self._remember(rel, key, doc=doc)

        try:
            docs, skipped = load_corpus(self.folder, s.max_file_bytes, read=read)
        except CorpusError as exc:
            if not self._pending:
                log.warning("%s; still answering from the last index until the folder has a usable document", exc)
            return None
        finally:
            self._seen = {k: v for k, v in self._seen.items() if k in visited}  # forget deleted files
        new = {d.source: d for d in docs}
        if _same(new, current):
            bot.skipped = list(skipped)  # a file that cannot be used came or went: listed, nothing to re-index
            return None
        added = tuple(sorted(new.keys() - current.keys()))
        removed = tuple(sorted(current.keys() - new.keys()))
        changed = tuple(sorted(k for k in new.keys() & current.keys() if _identity(new[k]) != _identity(current[k])))
        try:
            index = bot.reload(docs, skipped)
        except BaseException:
            self._dirty = True
            raise
        self.version += 1
        self.last_changed = time.time()
        done = Reindexed(added, changed, removed, len(new), len(index.chunks), index.info.get("n_embedded"),
                         time.perf_counter() - t0, tuple(skipped))
        log.info("%s", done.summary())
        if self.on_reload is not None:
            self.on_reload(done)
        return done

    def _remember(self, rel: str, key: tuple, doc: Document | None = None, error: CorpusError | None = None):
        self._seen[rel] = _Seen(key, doc, error)
        if error is not None:
            raise error
        return doc


def _not_hidden(change, path: str) -> bool:
    """Events worth a look: none below a hidden file or folder (load_corpus never reads those: editors' and
    downloaders' temporary files live there)."""
    return not any(part.startswith(".") for part in Path(path).parts[1:])


def _stat_key(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return ()
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _identity(doc: Document) -> tuple:
    return (doc.sha256, doc.meta, doc.text)


def _same(a: dict[str, Document], b: dict[str, Document]) -> bool:
    return a.keys() == b.keys() and all(a[k] is b[k] or _identity(a[k]) == _identity(b[k]) for k in a)


def newest_change(folder: Path) -> float:
    """time.time() of the newest change under folder (files and folders, hidden ones aside): when the corpus
    last changed, as far as the disk tells; 0.0 when the folder cannot be read."""
    newest = 0.0
    try:
        newest = folder.stat().st_mtime
        for dirpath, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in (*dirs, *files):
                if not name.startswith("."):
                    try:
                        newest = max(newest, os.stat(os.path.join(dirpath, name), follow_symlinks=False).st_mtime)
                    except OSError:
                        pass
    except OSError:
        pass
    return newest


class _Writers:
    """The files some process has open for writing (device, inode), from Linux's /proc, gathered once per look
    and only when asked: a copy in progress whose writer paused longer than watch_debounce is still not read.
    Where /proc cannot be read (another system, other users' processes) this finds nothing and the quiet time
    alone decides."""

    def __init__(self):
        self._open: set[tuple[int, int]] | None = None

    def has(self, st: os.stat_result) -> bool:
        if self._open is None:
            self._open = _open_for_writing()
        return (st.st_dev, st.st_ino) in self._open


def _open_for_writing() -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")
                if not (st.st_mode & 0o170000) == 0o100000:  # regular files only (not sockets, pipes, ttys)
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
                    flags = next((int(line.split()[1], 8) for line in f if line.startswith("flags:")), 0)
            except (OSError, ValueError, IndexError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR):
                found.add((st.st_dev, st.st_ino))
    return found
