"""Ingest stage: read the corpus folder, name each document (its title and metadata), and cut it into
sentence-aware chunks.

Offsets are character offsets into the document's extracted text (formats.py: a .txt file decoded as UTF-8
exactly as it is on disk, no newline translation; the readable text of .md/.rst/.html/.pdf), so
`document.text[chunk.start:chunk.end] == chunk.text` always holds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from .cite import TITLE_MAX_CHARS, TITLE_MAX_WORDS, content_words, sentence_spans
from .errors import CorpusError
from .extractor import extract
from .formats import DOC_SUFFIXES
from .formats_base import Limits, Metadata, clean_controls, clean_meta, page_at
from .structure import Structure
from .types import Chunk

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .ocr import OcrOptions

log = logging.getLogger("qa_bot")

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the corpus folder, with forward slashes
    text: str  # the extracted text (extractor.extract): what is chunked, cited and highlighted
    sha256: str  # of the file's bytes
    meta: Metadata = Metadata()
    pages: tuple[int, ...] = ()  # PDF: offset in text where each page starts
    # Its section headings and lead sentence, found once here (in the worker process that read it, when one did:
    # it is pickled back with the rest), not by every question that reads it. Not an argument: made from text,
    # also by dataclasses.replace.
    structure: Structure = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "structure", Structure.of(self.text))

    def page(self, offset: int) -> int | None:
        """The 1-based PDF page holding text offset `offset`; None for other formats."""
        return page_at(self.pages, offset)


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


def read_document(path: Path, source: str, max_bytes: int, root: Path | None = None,
                  limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Document:
    """Read one file (and its sidecar NAME.meta.json, when there is one inside root); raise CorpusError with a
    user-facing reason when it cannot be used. limits: what reading it may take (default: the settings'); `ocr`:
    how scanned PDF pages are read (extractor.extract)."""
    size = path.stat().st_size
    if size == 0:
        raise CorpusError(f"{source}: empty file")
    if size > max_bytes:
        raise CorpusError(f"{source}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    return document_from_bytes(source, path.read_bytes(), read_sidecar(path, source, root or path.parent.resolve()),
                               limits=limits, ocr=ocr)


def default_limits() -> Limits:
    """What reading a corpus document may take, by the settings (QA_BOT_MAX_DOCUMENT_CHARS, _EXTRACT_SECONDS)."""
    from .settings import Settings

    return Settings.from_env().corpus_limits


SIDECAR_FIELDS = {"title": "title", "date": "date", "published": "date", "author": "author", "url": "url",
                  "publisher": "publisher", "description": "description"}
SIDECAR_MAX_BYTES = 64 * 1024  # a sidecar is a handful of short fields: a larger one is not read
SIDECAR_MAX_DEPTH = 16  # its fields are top-level strings; nesting deeper than this is not metadata


def read_sidecar(path: Path, source: str, root: Path) -> Metadata:
    """Metadata from NAME.meta.json beside the file ("title", "date", "author", "url", "publisher", "description").
    A sidecar that is not a JSON object, is over SIDECAR_MAX_BYTES or nests deeper than SIDECAR_MAX_DEPTH (both
    checked before it is parsed), links out of the corpus folder, or fails in any other way is ignored with a warning
    naming it: the document is indexed without it (issue 45, G19: one 100,000-deep sidecar stopped `qa-bot index`
    for the whole corpus with a RecursionError)."""
    meta = path.with_name(path.stem + ".meta.json")
    try:
        if not meta.is_file():
            return Metadata()
        if not _inside(meta, root):  # a sidecar linking out is not read
            log.warning("ignored %s: a link out of the corpus folder", meta.name)
            return Metadata()
        with open(meta, "rb") as f:
            raw = f.read(SIDECAR_MAX_BYTES + 1)
        if len(raw) > SIDECAR_MAX_BYTES:
            raise ValueError(f"over {SIDECAR_MAX_BYTES // 1024} KB")
        text = raw.decode("utf-8")
        if json_depth(text) > SIDECAR_MAX_DEPTH:
            raise ValueError(f"nested deeper than {SIDECAR_MAX_DEPTH} levels")
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        fields: dict[str, str] = {}
        for key, field in SIDECAR_FIELDS.items():
            if isinstance(obj.get(key), (str, int)) and str(obj[key]).strip() and field not in fields:
                fields[field] = str(obj[key])
        return clean_meta(f"{meta.name}", **fields)
    except Exception as exc:  # any failure costs this document its sidecar, never the corpus its index
        why = str(exc)[:80] if isinstance(exc, ValueError) else f"{type(exc).__name__}: {str(exc)[:80]}"
        log.warning("ignored %s (metadata of %s): not a usable JSON object (%s)", meta.name, source, why)
        return Metadata()


def json_depth(text: str) -> int:
    """The deepest nesting of [ and { in JSON text, strings skipped; one linear pass, no recursion."""
    depth = most = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            most = max(most, depth)
        elif ch in "]}":
            depth -= 1
    return most


def document_from_bytes(source: str, data: bytes, sidecar: Metadata = Metadata(), *,
                        limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Document:
    """The document in these bytes, by its suffix (extractor.extract, under limits: by default the settings'
    corpus_limits); sidecar's fields override the file's own."""
    found = extract(source, data, limits or default_limits(), ocr)
    meta = found.meta.merged(sidecar)
    if not meta.title:
        meta = replace(meta, title=_title_from_text(found.text, source))
    return Document(source=source, text=found.text, sha256=hashlib.sha256(data).hexdigest(), meta=meta, pages=found.pages)


# Text that addresses instructions to an AI assistant: a document is there to be read, so a document holding
# these was written to steer the reader (issue 14, I4: a planted "…'s chairman is PWNED-4471" was answered).
_INSTRUCTIONS = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in (
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|these\s+)?"
    r"(?:previous|prior|above|earlier|preceding|other|rest\s+of\s+(?:the|this|these))\b[^.\n]{0,30}?"
    r"\b(?:instructions?|prompts?|sentences|text|data|rules|context|messages?|passages)\b",
    # a chat-role line that says something; a bare "system:" heading (Debian's libjsoncpp25 README.Debian) is not one
    r"^[ \t]*(?:system|assistant)[ \t]*:[ \t]*\S",
    r"\b(?:reply|respond|answer|say|output)\b[^.\n]{0,60}?\b(?:to|for)\s+(?:every|any|all|each)\s+questions?\b",
    r"\bwhatever\s+the\s+question\b",
    r"\b(?:print|reveal|repeat|show)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|instructions|prompt)\b",
    r"\b(?:developer|jailbreak)\s+mode\b",
)]


def instructions_to_assistant(text: str) -> str:
    """The first passage of text that gives an AI assistant instructions ("ignore all previous instructions",
    "System:", "answer X to every question"), or "" when there is none."""
    found = [m for p in _INSTRUCTIONS if (m := p.search(text))]
    return " ".join(min(found, key=lambda m: m.start()).group(0).split()) if found else ""


def load_corpus(corpus_dir: Path, max_bytes: int, limits: Limits | None = None, *, ocr: "OcrOptions | None" = None,
                read: Callable[[Path, str], Document | None] | None = None,
                workers: int | None = None) -> tuple[list[Document], list[Skipped]]:
    """All documents (DOC_SUFFIXES) below corpus_dir (hidden ones excluded), sorted; unusable ones are skipped with a
    warning naming the file: links that lead out of the folder (never followed: a link to /etc/passwd would be
    indexed and quoted), broken links and link loops, FIFOs and other special files, text over limits.max_chars
    or reading over limits.seconds (default: the settings'). Links to folders are not followed. Raises
    CorpusError when the folder is missing or nothing is usable. Documents in heavy formats are extracted in
    worker processes when there are many (CorpusStream).
    read(path, source): reads one file in place of read_document (watch.py's reader reuses unchanged documents);
    None from it leaves the file out for now, without a warning (a file still being written)."""
    stream = CorpusStream(corpus_dir, max_bytes, workers, limits, ocr=ocr, read=read)
    for _ in stream:
        pass
    return stream.documents, stream.skipped


# HTML, PDF and office extraction (trafilatura, pypdf, ...: ~10-100 ms a file) runs in worker processes when a corpus has at
# least this many such files; fewer are not worth starting a process (~1 s to import trafilatura in it).
PARALLEL_MIN_FILES = 16
_HEAVY = (".html", ".htm", ".pdf", ".docx", ".epub", ".odt")


def parse_workers() -> int:
    """Worker processes for extraction: one core is left to the embedder (and the process that feeds it)."""
    return max(1, (os.cpu_count() or 2) - 1)


class CorpusStream:
    """The documents of a corpus folder, in the sorted order load_corpus gives, as they are read: iterate once.
    HTML and PDF files are extracted in `workers` processes ahead of the one iterating (which meanwhile chunks and
    embeds what it has), at most a bounded window ahead, so memory stays bounded. `total` files are candidates
    (known before the first document); `documents` and `skipped` fill as it goes. Raises CorpusError at the end
    when nothing was usable, and at once when the folder is missing."""

    WINDOW_PER_WORKER = 32  # files extracted ahead of the consumer, per worker

    def __init__(self, corpus_dir: Path, max_bytes: int, workers: int | None = None, limits: Limits | None = None, *,
                 ocr: "OcrOptions | None" = None, read: Callable[[Path, str], Document | None] | None = None):
        self.corpus_dir = Path(corpus_dir)
        if not self.corpus_dir.is_dir():
            raise CorpusError(f"corpus folder not found: {self.corpus_dir}")
        self.max_bytes = max_bytes
        self.limits, self.ocr, self.read = limits or default_limits(), ocr, read
        self.root = self.corpus_dir.resolve()
        self.documents: list[Document] = []
        self.skipped: list[Skipped] = []
        self.files = self._candidates()
        self.total = len(self.files)
        heavy = sum(p.suffix.lower() in _HEAVY for p, _ in self.files)
        # a caller's own reader (watch.py's) runs here, in order
        parallel = read is None and heavy >= PARALLEL_MIN_FILES
        self.workers = (parse_workers() if workers is None else workers) if parallel else 0

    def _skip(self, rel: str, reason: str) -> None:
        self.skipped.append(Skipped(rel, f"{rel}: {reason}"))
        log.warning("skipped %s: %s", rel, reason)

    def _candidates(self) -> list[tuple[Path, str]]:
        """(path, source) of every regular document file; links and special files are judged (and skipped) here."""
        out = []
        for path, is_dir_link in _walk(self.corpus_dir):
            rel = path.relative_to(self.corpus_dir).as_posix()
            if is_dir_link:
                if not _inside(path, self.root):
                    self._skip(rel + "/", "a link to a folder outside the corpus folder (not followed)")
                continue
            if path.suffix.lower() not in DOC_SUFFIXES:
                continue
            if path.is_symlink():
                try:
                    path.resolve(strict=True)
                except (OSError, RuntimeError):  # RuntimeError: a loop, on Python < 3.13
                    self._skip(rel, "a broken link or a link loop")
                    continue
                if not _inside(path, self.root):
                    self._skip(rel, "a link to a file outside the corpus folder (not followed)")
                    continue
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                self._skip(rel, f"unreadable ({exc.strerror})")
                continue
            if not stat.S_ISREG(mode):
                if not stat.S_ISDIR(mode):  # a folder named x.txt is just a folder
                    self._skip(rel, "not a regular file (a FIFO, socket or device), not read")
                continue
            out.append((path, rel))
        return out

    def __iter__(self) -> Iterator[Document]:
        pool = None
        if self.workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may already run onnxruntime's or torch's threads
            pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            ahead: dict[int, Future] = {}
            window = self.WINDOW_PER_WORKER * max(1, self.workers)
            heavy = [i for i, (p, _) in enumerate(self.files) if pool and p.suffix.lower() in _HEAVY]
            queued = 0
            for i, (path, rel) in enumerate(self.files):
                while pool and queued < len(heavy) and heavy[queued] < i + window:
                    j = heavy[queued]
                    ahead[j] = pool.submit(_read_logged, self.files[j][0], self.files[j][1], self.max_bytes, self.root,
                                           self.limits, self.ocr)
                    queued += 1
                result = ahead.pop(i).result() if i in ahead else self._read_here(path, rel)
                doc = self._take(rel, *result)
                if doc is not None:
                    self.documents.append(doc)
                    yield doc
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        if not self.documents:
            detail = "; ".join(s.reason for s in self.skipped) or f"no {', '.join(DOC_SUFFIXES)} files"
            raise CorpusError(f"no usable documents in {self.corpus_dir} ({detail})")

    def _read_here(self, path: Path, rel: str):
        if self.read is None:
            return _read(path, rel, self.max_bytes, self.root, self.limits, self.ocr)
        try:  # None: left out for now, without a warning
            return self.read(path, rel), None, []
        except Exception as exc:
            return None, _failure(exc), []

    def _take(self, rel: str, doc: Document | None, error: tuple[str, str] | None, warnings: list[str]) -> Document | None:
        for w in warnings:  # a worker's warnings (a sidecar that is not JSON, a date that is not one), said here
            log.warning("%s", w)
        if error is not None:
            kind, reason = error
            if kind == "corpus":
                self.skipped.append(Skipped(rel, reason))
                log.warning("skipped %s", reason)
            else:
                self._skip(rel, reason)
        return doc


def _failure(exc: Exception) -> tuple[str, str]:
    """(kind, reason) of a document that could not be read."""
    if isinstance(exc, CorpusError):
        return "corpus", str(exc)
    if isinstance(exc, OSError):
        return "os", f"unreadable ({exc.strerror})"
    return "other", f"not readable ({type(exc).__name__})"  # a parser's own failure costs that file, never the corpus


def _read(path: Path, rel: str, max_bytes: int, root: Path, limits: Limits, ocr: "OcrOptions | None",
          warnings: list[str] | None = None):
    """(document or None, (kind, reason) or None, warnings): read_document with its failures as values."""
    warnings = [] if warnings is None else warnings
    try:
        return read_document(path, rel, max_bytes, root, limits, ocr), None, warnings
    except Exception as exc:
        return None, _failure(exc), warnings


def _read_logged(path: Path, rel: str, max_bytes: int, root: Path, limits: Limits, ocr: "OcrOptions | None"):
    """_read in a worker process, whose log the user would not see: its warnings come back with the result and
    the parent logs them (_take)."""
    from .extractor import WarningCollector

    collect = WarningCollector()
    logger = logging.getLogger("qa_bot")
    logger.addHandler(collect)
    logger.propagate = False  # this process only reads documents: nothing else logs meanwhile
    try:
        return _read(path, rel, max_bytes, root, limits, ocr, collect.messages)
    finally:
        logger.removeHandler(collect)
        logger.propagate = True


def _walk(corpus_dir: Path) -> list[tuple[Path, bool]]:
    """(path, is a link to a folder) for every entry below corpus_dir, hidden ones (and all below them)
    excluded, links to folders listed but not entered, sorted by path."""
    out = []
    for folder, dirs, files in os.walk(corpus_dir, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for d in dirs:
            if os.path.islink(os.path.join(folder, d)):
                out.append((Path(folder, d), True))
        out.extend((Path(folder, f), False) for f in files if not f.startswith("."))
    return sorted(out)


def _inside(path: Path, root: Path) -> bool:
    """Whether path, all links resolved, lies inside root (itself resolved)."""
    try:
        path.resolve(strict=True).relative_to(root)
        return True
    except (OSError, RuntimeError, ValueError):
        return False


def document_title(doc: Document, corpus_dir: Path | None = None) -> str:
    """The document's title: its metadata's (a sidecar NAME.meta.json's "title", else the file's own: HTML
    <title>/og:title, front matter, PDF Title) when there is one; else its first line when it reads as a title,
    with the file name after it when that adds words ("Mozilla Public License Version 2.0 (MPL-2.0)"); else the
    file name. corpus_dir: a document made without read_document, its sidecar read from there."""
    if corpus_dir is not None and not doc.meta.title:
        path = Path(corpus_dir) / doc.source
        title = read_sidecar(path, doc.source, Path(corpus_dir).resolve()).title
        if title:
            return title
    return doc.meta.title or _title_from_text(doc.text, doc.source)


def title_from_name(source: str) -> str:
    """A title made of the file name: "alibaba_cloud_spinoff.txt" -> "alibaba cloud spinoff"."""
    name = Path(source).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return " ".join(clean_controls(stem).replace("_", " ").split())  # a title is shown: no ESC, BEL or RLO in it


_MODE_LINE = re.compile(r"\s*-\*-.*$")  # Emacs's "-*- outline -*-" after a NEWS file's name
# Lines about the file, not the document: a version-control stamp ("-- $Id: README,v 1.6 2019/01/29 tom Exp $"
# names a revision and its last committer: "tom" answered "who wrote mawk?" from it) and an editor's mode line
# ("-- vile:txtmode", "# vim: set ft=markdown").
_FILE_LINE = re.compile(r"\$[A-Za-z]+:[^$]*\$|^\W*(?:vim?|vile|ex):", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_UP_TO_NUMBER = re.compile(r"\D*\d+")


def _recurs(line: str, text: str) -> bool:
    """Whether lines that open as this one does, up to its first number and numbers aside, come again further
    on: then it heads a section of a series ("Noteworthy changes in release 6.1 (2022-12-12)" over release
    6.0's; "v1.5.4 (Feb 2023)" over "v1.4.5  (May 22, 2020)"), not the document."""
    lead = _UP_TO_NUMBER.match(line)
    if lead is None:
        return False
    shape = _DIGITS.sub("0", lead.group(0))
    return sum(_DIGITS.sub("0", x.strip("#*=- \t")).startswith(shape) for x in text.splitlines()) > 1


def _title_from_text(text: str, source: str) -> str:
    name = title_from_name(source)
    lines = (line.strip() for line in text[:2000].splitlines())
    first = next((line for line in lines if line and not _FILE_LINE.search(line)), "")
    first = _MODE_LINE.sub("", first)
    if not first or len(first) > TITLE_MAX_CHARS or len(first.split()) > TITLE_MAX_WORDS or first[-1:] in ".,;:":
        return name
    first = " ".join(clean_controls(first).strip("#*=- ").split())
    if _recurs(first, text):
        return name
    return first if content_words(name) <= content_words(first) else f"{first} ({name})"


def _split_long(text: str, span: tuple[int, int], fits: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Split one over-long sentence at word boundaries into pieces that fit."""
    words = [(span[0] + m.start(), span[0] + m.end()) for m in _WORD.finditer(text[span[0]:span[1]])]
    pieces, cur = [], None
    for ws, we in words:
        if cur is None:
            cur = (ws, we)
        elif fits(cur[0], we):
            cur = (cur[0], we)
        else:
            pieces.append(cur)
            cur = (ws, we)
    if cur:
        pieces.append(cur)
    return pieces


def chunk_text(
    text: str,
    source: str,
    *,
    max_chars: int,
    max_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most max_chars characters (a single longer sentence makes
    its own chunk) and at most max_tokens word pieces (special tokens included); sentences over the
    token limit are split at word boundaries."""

    def fits(s: int, e: int) -> bool:
        return count_tokens(text[s:e]) <= max_tokens

    units: list[tuple[int, int]] = []
    for span in sentence_spans(text):
        units.extend([span] if fits(*span) else _split_long(text, span, fits))

    spans: list[tuple[int, int]] = []
    for s, e in units:
        if spans and e - spans[-1][0] <= max_chars and fits(spans[-1][0], e):
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return [make_chunk(source, s, e, text[s:e]) for s, e in spans]


def make_chunk(source: str, start: int, end: int, text: str) -> Chunk:
    digest = hashlib.sha1(f"{source}\0{start}\0{end}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return Chunk(id=digest, source=source, start=start, end=end, text=text)


def chunk_documents(docs: Iterable[Document], **kwargs) -> list[Chunk]:
    return [c for d in docs for c in chunk_text(d.text, d.source, **kwargs)]
