"""Formats stage: turn one file's bytes into the text that is chunked, cited and highlighted, plus its metadata.

The extracted text is the document from then on: chunks, citations and highlights are offsets into it
(`extracted[start:end] == citation.text`), so quotes never show markup (roles, link syntax, tags). Formats:
.txt as it is; .md/.markdown and .rst with their markup made readable; .html/.htm through trafilatura (main
text; menus, scripts and boilerplate dropped); .pdf through pypdf, page by page (a citation names the page), a
scanned page read by OCR (ocr.py); .docx, .epub and .odt in formats_office.py.
"""
from __future__ import annotations

import bisect
import io
import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from .errors import CorpusError

if TYPE_CHECKING:
    from .ocr import OcrOptions

log = logging.getLogger("qa_bot")

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
OFFICE_SUFFIXES = (".docx", ".epub", ".odt")  # formats_office.py
DOC_SUFFIXES = (*TEXT_SUFFIXES, ".html", ".htm", ".pdf", *OFFICE_SUFFIXES)
PAGE_BREAK = "\n\n"  # between the pages of a PDF in its extracted text
MIN_PARAGRAPH_WORDS = 6  # a rescued HTML text with no line this long is menus ("Home Menu"), not an article
# Metadata is a line of a listing: a title, a date, a name, a URL. Longer values (a 1 MB "title" in a PDF's Info
# or a sidecar) are cut here, so no listing, page header or citation carries them.
META_MAX_CHARS = 2000
FRONT_MATTER_MAX_CHARS = 64 * 1024  # a front matter block is a few lines of key: value; a longer one is not read

# Characters that move a terminal or reorder what is shown: C0 controls but tab and newline, DEL and C1, and the
# bidi embeddings, overrides and isolates (an RLO makes "txt.exe" read "exe.txt"). Removed from every extracted
# text (Markdown, reStructuredText, HTML, PDF) and its metadata; a .txt file is cited as it is on disk, so its
# text keeps them (a NUL makes it binary) and every output escapes or strips them instead.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A terminal escape sequence goes whole (CSI "ESC [ 31 m", OSC "ESC ] … BEL"), not just its ESC: "[31m" is no text.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P^_X][^\x1b]*(?:\x1b\\)?")


def clean_controls(text: str) -> str:
    """text with terminal escape sequences, control and bidi-override characters removed; carriage returns
    become newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text) if "\x1b" in text else text)


@dataclass(frozen=True)
class Limits:
    """What reading one document may take (issue 45, G2: an 86 KB PDF held a string that expands to 44 MB of text,
    and reading it took 38 s and 593 MB). Past max_chars of extracted text the document is refused; a PDF, and with
    isolate every format (a chat upload), is read in a child process (qa_bot.extractor) stopped after `seconds`,
    so no document holds the server's interpreter, however it was built."""

    max_chars: int
    seconds: float
    isolate: bool = False

    def check(self, source: str, chars: int) -> None:
        if chars > self.max_chars:
            raise CorpusError(f"{source}: its text is over the limit of {self.max_chars:,} characters for one "
                              f"document (QA_BOT_MAX_DOCUMENT_CHARS); not read")


# A page's content stream takes a few bytes for each character it shows (positions, kerning, glyph codes in hex):
# a document whose decoded streams exceed this many bytes per character of its text limit cannot be within it,
# and is refused before pypdf parses them (decoding is zlib's, fast; parsing a 44 MB string took pypdf 38 s).
CONTENT_BYTES_PER_CHAR = 8


def _content_bytes(page) -> int:
    """The decoded size of a PDF page's content streams."""
    from pypdf.generic import ArrayObject

    contents = page.get("/Contents")
    if contents is None:
        return 0
    found = contents.get_object()
    streams = [x.get_object() for x in found] if isinstance(found, ArrayObject) else [found]
    return sum(len(x.get_data()) for x in streams if hasattr(x, "get_data"))


class _OverBudget(Exception):
    """Raised inside pypdf's text extraction (from its visitor) to stop it: the text or the time is over budget."""


@dataclass(frozen=True)
class Metadata:
    """What is known about a document beyond its text; "" when unknown."""

    title: str = ""
    date: str = ""  # publication date, ISO yyyy-mm-dd
    author: str = ""
    url: str = ""
    publisher: str = ""
    description: str = ""  # the page's own summary (meta description, og:description, front matter)
    site: str = ""  # other names the page goes by: its host name, and its <title> as written when it says more than title

    def names(self) -> str:
        """Everything the metadata states, one field a line: what a question may name besides the text (the
        publisher, the author, the blog's name in the <title>, the year it was published)."""
        from urllib.parse import urlsplit

        host = urlsplit(self.url).hostname or "" if "://" in self.url else ""
        return "\n".join(v for v in (self.title, self.author, self.publisher, self.site, host, self.description,
                                      _date_words(self.date)) if v)

    def merged(self, over: "Metadata") -> "Metadata":
        """These fields, each replaced by over's where over has one."""
        return replace(self, **{k: v for k, v in over.__dict__.items() if v})


@dataclass(frozen=True)
class Extracted:
    text: str
    meta: Metadata
    pages: tuple[int, ...] = ()  # offset in text where each PDF page starts (page 1 first); () for other formats


def page_at(pages: tuple[int, ...], offset: int) -> int | None:
    """The 1-based page holding text offset `offset`, or None for a document without pages."""
    return bisect.bisect_right(pages, offset) if pages else None


# --- dates --------------------------------------------------------------------------------------------------
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_ISO = re.compile(r"^\s*(?:D:)?(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})(?:$|[T\s\d+\-Z'])")
_DMY = re.compile(r"^\s*(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?,?\s+(\d{4})\b")
_MDY = re.compile(r"^\s*([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\b")


def iso_date(value: object) -> str:
    """value as yyyy-mm-dd ("2023-05-12T10:00:00Z", "2023/05/12", "D:20230512...", "12 May 2023", "May 12, 2023");
    raises ValueError when it is not a date."""
    text = str(value).strip()
    for rx, order in ((_ISO, "ymd"), (_DMY, "dmy"), (_MDY, "mdy")):
        m = rx.match(text)
        if m:
            parts = dict(zip(order, m.groups()))
            month = parts["m"] if parts["m"].isdigit() else _MONTHS.get(parts["m"][:3].lower(), 0)
            try:
                return date(int(parts["y"]), int(month), int(parts["d"])).isoformat()
            except ValueError:
                break
    raise ValueError(f"{text[:40]!r} is not a date (expected yyyy-mm-dd)")


def _date_words(iso: str) -> str:
    """A yyyy-mm-dd date with its month written out ("2023-05-12 12 May 2023"), as a question names it."""
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return ""
    return f"{iso} {d.day} {d.strftime('%B')} {d.year}"


def clean_meta(source: str, title="", date="", author="", url="", publisher="", description="", site="") -> Metadata:
    """Metadata from raw values: whitespace collapsed, control characters removed, each at most META_MAX_CHARS; a
    date that cannot be parsed is dropped with a warning naming the file (the document is indexed without it)."""
    fields = {k: " ".join(clean_controls(str(v or "")[:META_MAX_CHARS]).split()) for k, v in
              dict(title=title, author=author, url=url, publisher=publisher, description=description, site=site).items()}
    iso = ""
    if date:
        try:
            iso = iso_date(str(date)[:META_MAX_CHARS])
        except ValueError as exc:
            log.warning("%s: date ignored: %s", source, exc)
    return Metadata(date=iso, **fields)


# --- Markdown and reStructuredText ------------------------------------------------------------------------
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# Every pattern here is linear in its line (issue 45, W1): a variable part never holds the character that opens
# another match ("[^\[\]]" in a link's text, "[^<>]" in a tag), so no run of openers ("![![![…", "<a<a<a…") is
# rescanned from each of them; emphasis, whose text may hold its own markers, is paired by _delimited instead.
_MD_INLINE = [
    (re.compile(r"!\[([^\[\]]*)\]\([^()]*\)"), r"\1"),  # image: its alt text
    (re.compile(r"\[([^\[\]]+)\]\((?:[^()]|\([^()]*\))*\)"), r"\1"),  # [text](url "title")
    (re.compile(r"\[([^\[\]]+)\]\[[^\[\]]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"<((?:https?|mailto):[^<>\s]+)>"), r"\1"),  # <https://...>
    (re.compile(r"`+([^`]+?)`+"), r"\1"),  # `code`
    ("strong", ("**", "__")),  # **strong**: _delimited
    ("emphasis", ("*", "_")),  # *emphasis*: _delimited
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"</?[A-Za-z][^<>\n]*>"), ""),  # inline HTML tags
]
_MD_QUOTE = re.compile(r"^\s{0,3}>\s?")
_MD_BULLET = re.compile(r"^(\s*)[*+]\s+")
_MD_HEADING = re.compile(r"\s{0,3}#{1,6}\s+")  # an ATX heading's opening; its closing #s are cut by _heading
_MD_DROP = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$|^\s{0,3}(?:[=\-]{3,}|\*{3,}|_{3,})\s*$")
_MD_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
# A line of badges: images alone, each perhaps inside a link ("[![Build Status](…badge.svg)](…)"). Their alt
# text is no sentence, and on a README's first line it would be taken for the title.
_MD_BADGES = re.compile(r"^\s*(?:\[?!\[[^\]\n]*\]\([^)\s]*\)(?:\]\([^)\s]*\))?\s*)+$")

_RST_INLINE = [
    # A role starts where no role-name character comes before it (as reStructuredText's own rule has it): a run of
    # ":a:a:a…" is then tried once, not from each of its colons. The text before a target is cut at its last
    # non-space by _rstrip_group instead of a lazy "\s*", which rescanned a run of spaces from each character.
    (re.compile(r"(?<![\w:+.-]):[\w:+.-]+:`([^`<]*)<[^<>`]*>`"), "rstrip"),  # :role:`text <target>`
    (re.compile(r"(?<![\w:+.-]):[\w:+.-]+:`([^`]*)`"), r"\1"),  # :role:`text`
    (re.compile(r"`([^`<]+)<[^<>`]+>`__?"), "rstrip"),  # `text <url>`_
    (re.compile(r"`([^`]+)`__?"), r"\1"),  # `text`_
    (re.compile(r"``(.+?)``"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    ("strong", ("**",)),  # _delimited
    ("emphasis", ("*",)),
    (re.compile(r"\|([\w -]+)\|"), r"\1"),  # |substitution|
    (re.compile(r"(\w)_\b"), r"\1"),  # reference_
]
_RST_ADORN = re.compile(r"^\s*([=\-~^\"'`#*+:.])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(r"^\.\.\s+(?:_[^:]+:.*|[\w:-]+::.*|\[[^\]]+\].*|\|[^|]+\|.*)?$")
_RST_FIELD = re.compile(r"^:(\w[\w ]*):\s*(.*)$")
# An admonition's text starts on its directive line (".. note:: This release was subsequently yanked, ..."): the
# line is kept as Sphinx shows it ("Note: This release ..."), not dropped with the other directives.
_RST_ADMONITION = re.compile(r"^(\s*)\.\.\s+(note|warning|attention|caution|danger|error|hint|important|tip|seealso"
                             r"|deprecated|versionadded|versionchanged)::[ \t]*(.*)$", re.IGNORECASE)
_ADMONITION_WORDS = {"seealso": "See also:", "deprecated": "Deprecated since version", "versionadded": "New in version",
                     "versionchanged": "Changed in version"}


def _rstrip_group(m: re.Match) -> str:
    return m.group(1).rstrip() or m.group(1)


# Where emphasis may open and close, as the old patterns "(\*\*|__)(?=\S)(.+?)(?<=\S)\1" and
# "(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])" had it; each is a fixed-width test, found in one pass.
_STRONG_OPEN = re.compile(r"(?=(\*\*|__)\S)")
_STRONG_CLOSE = re.compile(r"(?<=\S)(?=(\*\*|__))")
_EMPHASIS_OPEN = re.compile(r"(?<![\w*])(?=([*_])\S)")
_EMPHASIS_CLOSE = re.compile(r"(?<=\S)(?=([*_])(?![\w*]))")


def _delimited(line: str, kind: str, delimiters: tuple[str, ...]) -> str:
    """line with each emphasis span ("**text**", "*text*") replaced by its text, exactly as re.sub with the old
    lazy patterns did (leftmost opener that has a closer, the nearest closer after it), in O(n log n): the lazy
    patterns rescanned the rest of the line from every opener that had no closer ('**a ' * 10000: 16 s)."""
    if not any(d in line for d in delimiters):
        return line
    opens, closes = (_STRONG_OPEN, _STRONG_CLOSE) if kind == "strong" else (_EMPHASIS_OPEN, _EMPHASIS_CLOSE)
    width = len(delimiters[0])
    closers: dict[str, list[int]] = {d: [] for d in delimiters}
    for m in closes.finditer(line):
        if m.group(1) in closers:
            closers[m.group(1)].append(m.start())
    out, pos = [], 0
    for m in opens.finditer(line):
        i, d = m.start(), m.group(1)
        if i < pos or d not in closers:
            continue
        at = closers[d]
        k = bisect.bisect_left(at, i + width + 1)  # at least one character of text between them
        if k == len(at):
            continue
        j = at[k]
        out += [line[pos:i], line[i + width:j]]
        pos = j + width
    out.append(line[pos:])
    return "".join(out)


def _inline(line: str, rules) -> str:
    for rx, sub in rules:
        if isinstance(rx, str):
            line = _delimited(line, rx, sub)
        else:
            line = rx.sub(_rstrip_group if sub == "rstrip" else sub, line)
    return line


def _heading(line: str) -> str | None:
    """An ATX heading's text ("## Results ##" -> "Results"), or None when line is no heading. Cut with string
    operations: the old pattern's lazy text rescanned the trailing spaces from every character before them."""
    m = _MD_HEADING.match(line)
    if m is None:
        return None
    text = line[m.end():].rstrip()
    closed = text.rstrip("#")
    if closed != text and closed[-1:].isspace():  # closing #s count only after a space: "C#" stays
        text = closed.rstrip()
    return text


def _front_matter(text: str, source: str = "") -> tuple[dict[str, str], str]:
    """A leading `---` block of `key: value` lines (a simple subset of YAML, read without any YAML loader: nothing
    in it is executed or expanded, and nothing nests) and the text after it. A block over FRONT_MATTER_MAX_CHARS
    is dropped from the text with a warning naming the file; its fields are not read."""
    m = _FRONT.match(text)
    if not m:
        return {}, text
    if m.end() > FRONT_MATTER_MAX_CHARS:
        log.warning("%s: front matter ignored: it is over %s KB (its metadata is not read)", source or "a document",
                    FRONT_MATTER_MAX_CHARS // 1024)
        return {}, text[m.end():]
    fields = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-", "#")):
            fields[key.strip().lower()] = value.strip().strip("'\"")
    return fields, text[m.end():]


def _meta_from_fields(source: str, fields: dict[str, str]) -> Metadata:
    pick = lambda *keys: next((fields[k] for k in keys if fields.get(k)), "")  # noqa: E731
    return clean_meta(source, title=pick("title"), date=pick("date", "published", "pubdate", "publication_date"),
                      author=pick("author", "authors", "byline"), url=pick("url", "link", "canonical_url"),
                      publisher=pick("publisher", "site_name", "site", "source"),
                      description=pick("description", "summary", "excerpt"))


def markdown_text(text: str) -> str:
    """Markdown as readable text: headings without '#', links and images as their text, emphasis and code
    markers dropped, fence, badge and reference-definition lines removed, block quotes unquoted. A fenced
    block's lines are kept as they are, indented four spaces (Markdown's own code indent): a "# comment" or a
    short "key = 17" in a code sample is no heading."""
    out, fence = [], None
    for line in text.splitlines():
        m = _MD_FENCE.match(line)
        if fence:
            if m and m.group(1) == fence:
                fence = None
            else:
                out.append(f"    {line}".rstrip())
            continue
        if m:
            fence = m.group(1)
            continue
        if _MD_DROP.match(line) or _MD_BADGES.match(line):
            continue
        heading = _heading(line)
        line = line if heading is None else heading
        line = _MD_BULLET.sub(r"\1- ", _MD_QUOTE.sub("", line))
        out.append(_inline(line, _MD_INLINE).rstrip())
    return _squeeze("\n".join(out))


def rst_text(text: str) -> tuple[str, dict[str, str]]:
    """reStructuredText as readable text, and its bibliographic fields (:Date:, :Author:, ...): roles and links
    as their text, heading adornments and directive lines removed, an admonition's line kept as its text."""
    out, fields, said = [], {}, 0  # said: lines of text so far (docinfo fields come before the second)
    for line in text.splitlines():
        a = _RST_ADMONITION.match(line)
        if a:
            indent, kind, rest = a.groups()
            line = f"{indent}{_ADMONITION_WORDS.get(kind.lower(), kind.capitalize() + ':')} {rest}".rstrip()
        elif _RST_ADORN.match(line) or _RST_DIRECTIVE.match(line.strip()):
            continue
        m = _RST_FIELD.match(line)
        if m and said <= 1:  # docinfo: fields at the top, under the title
            fields[m.group(1).strip().lower()] = m.group(2).strip()
            continue
        if line.rstrip().endswith("::"):  # "Example::" introduces a literal block: keep "Example:"
            line = line.rstrip()[:-1]
        line = _inline(line, _RST_INLINE).rstrip()
        said += bool(line.strip())
        out.append(line)
    return _squeeze("\n".join(out)), fields


def _squeeze(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


# --- HTML and PDF ---------------------------------------------------------------------------------------------
def html_document(source: str, data: bytes) -> Extracted:
    """Main text of a web page (trafilatura: menus, scripts, footers dropped) and its metadata (Open Graph,
    article:published_time, <title>, author, canonical URL, site name)."""
    import trafilatura

    for name in ("trafilatura", "htmldate", "courlan"):  # their notes ("discarding data: None"): our reason says it
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        options = dict(output_format="txt", include_comments=False, include_tables=True, favor_precision=True,
                       deduplicate=False, with_metadata=False)
        text = trafilatura.extract(data, fast=True, **options)
        if not text:  # the fallback extractors (readability, jusText) rescue some layouts, and take menus on others
            text = trafilatura.extract(data, **options) or ""
            if not any(len(line.split()) >= MIN_PARAGRAPH_WORDS for line in text.splitlines()):
                text = ""
        found = trafilatura.extract_metadata(data)
    except Exception as exc:  # lxml and trafilatura raise many kinds on broken pages
        raise CorpusError(f"{source}: not a readable HTML page ({type(exc).__name__})") from None
    if not text or not text.strip():
        raise CorpusError(f"{source}: no article text found in the HTML page (malformed, or only menus and scripts)")
    meta = clean_meta(source, **{k: getattr(found, k, "") or "" for k in ("title", "date", "author", "url", "description")},
                      publisher=getattr(found, "sitename", "") or "",
                      site=_page_title(data, getattr(found, "title", "") or "")) if found else Metadata()
    return Extracted(_squeeze(text), meta)


# "<title" then no "<" before its ">": a run of "<title<title…" is not rescanned from each of them (issue 45, W1).
_TITLE_TAG = re.compile(rb"<title(?:\s[^<>]*)?>([^<]{1,400})</title>", re.I)
TITLE_SCAN_BYTES = 256 * 1024  # where a page's <title> is sought: it belongs in <head>


def _page_title(data: bytes, title: str) -> str:
    """The page's <title> as written ("Harbor Notes | Ferries return to the bay"), when it says more than the
    title the metadata settled on: the part it adds is often the blog's or the site's name."""
    import html

    m = _TITLE_TAG.search(data[:TITLE_SCAN_BYTES])
    if not m:
        return ""
    raw = " ".join(html.unescape(m.group(1).decode("utf-8", "replace")).split())
    return "" if raw.lower() == " ".join(title.split()).lower() else raw


def pdf_document(source: str, data: bytes, limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Extracted:
    """Text of a PDF, page by page (pages joined by a blank line; Extracted.pages says where each starts), and its
    metadata (Title, Author, CreationDate). A page without a text layer (a scan) is read by OCR (ocr.py; `ocr`
    None: its defaults, nothing cached). An encrypted PDF, or one no page of which has text, is refused; with
    limits, so is one whose text passes limits.max_chars or whose reading passes limits.seconds (checked between
    pages and as pypdf hands over text; a child process's owner also stops it from outside, qa_bot.extractor)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes ("EOF marker not found"): our reason says it
    until = time.monotonic() + limits.seconds if limits else None
    seen = 0  # characters pypdf has handed over so far

    def budget(text="", *_):
        nonlocal seen
        seen += len(text)
        if limits and (seen > limits.max_chars or time.monotonic() > until):
            raise _OverBudget

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many PDFs are "encrypted" with an empty password, only to stop edits
            except Exception:
                opened = 0
            if not opened:
                raise CorpusError(f"{source}: the PDF is encrypted (password-protected), so its text cannot be read")
        parts, pos = [], 0
        content = 0  # decoded bytes of the pages' content streams so far
        for page in reader.pages:
            content += _content_bytes(page) if limits else 0
            if limits and content > CONTENT_BYTES_PER_CHAR * limits.max_chars:
                raise CorpusError(f"{source}: its pages' content expands to over {content / 1e6:,.0f} MB, more "
                                  f"than {limits.max_chars:,} characters of text (the limit for one document, "
                                  "QA_BOT_MAX_DOCUMENT_CHARS) could take; not read")
            # The same clean-up as every other format's text: a PDF's text layer can hold NUL, ESC, BEL, RLO.
            body = clean_controls(page.extract_text(visitor_text=budget) or "").strip()
            budget()
            parts.append(body)
            pos += len(body) + len(PAGE_BREAK)
            if limits:
                limits.check(source, pos)
        scanned = _ocr_blank_pages(source, reader, parts, ocr)
        try:
            info = reader.metadata or {}
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:  # the text is still good
            log.warning("%s: PDF metadata ignored: not readable (%s)", source, type(exc).__name__)
            info = {}
    except CorpusError:
        raise
    except _OverBudget:
        if seen > limits.max_chars:
            limits.check(source, seen)
        raise CorpusError(f"{source}: reading the PDF took over {limits.seconds:g} s (the limit for one document, "
                          "QA_BOT_EXTRACT_SECONDS); not read") from None
    except RecursionError:
        raise CorpusError(f"{source}: not a readable PDF (its objects nest too deeply)") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise CorpusError(f"{source}: not a readable PDF ({type(exc).__name__}: {str(exc)[:80]})") from None
    pages, pos = [], 0
    for body in parts:
        pages.append(pos)
        pos += len(body) + len(PAGE_BREAK)
    text = PAGE_BREAK.join(parts)
    if not text.strip():
        raise CorpusError(f"{source}: the PDF has no text layer (a scanned image?) and "
                          f"{scanned.problem or 'OCR found no text on its pages'}")
    if scanned.problem:
        log.warning("%s: pages without a text layer were not all read: %s", source, scanned.problem)
    raw = lambda key: str(info.get(key) or "") if hasattr(info, "get") else ""  # noqa: E731
    meta = clean_meta(source, title=raw("/Title"), author=raw("/Author"), date=raw("/CreationDate"))
    return Extracted(text, meta, tuple(pages))


def _ocr_blank_pages(source: str, reader, parts: list[str], ocr: "OcrOptions | None"):
    """Fill in parts[i] for each page without a text layer with its OCR text (ocr.read_scanned); what OCR made of
    them (ocr.Scanned, whose `problem` names pages it could not read)."""
    from .ocr import OcrOptions, read_scanned

    scanned = read_scanned(source, reader.pages, [i for i, body in enumerate(parts) if not body], ocr or OcrOptions())
    for i, body in scanned.texts.items():
        parts[i] = body
    return scanned


def _suffix(source: str) -> str:
    return "." + source.rsplit(".", 1)[-1].lower() if "." in source else ""


def markup_text(source: str, text: str) -> tuple[str, dict[str, str]] | None:
    """The readable text and metadata fields of a Markdown or reStructuredText file named source (front matter,
    docinfo); None for any other kind of file, whose text is read as it is."""
    suffix = _suffix(source)
    if suffix in (".md", ".markdown"):
        fields, body = _front_matter(text, source)
        return markdown_text(body), fields
    if suffix == ".rst":
        return rst_text(text)
    return None


def extract(source: str, data: bytes, limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Extracted:
    """The readable text and metadata of one file, by its suffix. Raises CorpusError saying why a file cannot be
    used (empty, binary, not UTF-8, an HTML page with no article text, an encrypted PDF or a scanned one OCR
    cannot read, a damaged or oversized .docx/.epub/.odt; with limits, text over limits.max_chars or a reading
    over limits.seconds). `ocr`: how scanned PDF pages are read. With limits, a PDF (and with limits.isolate any
    file) is read in a child process (qa_bot.extractor): the budget holds however the file was built, and the
    reading never holds this interpreter (its lock, its other threads: the server's other users)."""
    if limits is not None and (limits.isolate or _suffix(source) == ".pdf"):
        from .extractor import extract_in_child

        return extract_in_child(source, data, limits, ocr)
    return extract_here(source, data, limits, ocr)


def extract_here(source: str, data: bytes, limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Extracted:
    """extract, in this process (limits: checked between steps; qa_bot.extractor runs this under a hard budget)."""
    found = _extract(source, data, limits, ocr)
    if limits is not None:
        limits.check(source, len(found.text))
    return found


def _extract(source: str, data: bytes, limits: Limits | None, ocr: "OcrOptions | None" = None) -> Extracted:
    if not data.strip():
        raise CorpusError(f"{source}: empty file")
    suffix = _suffix(source)
    if suffix == ".pdf":
        return pdf_document(source, data, limits, ocr)
    if suffix in OFFICE_SUFFIXES:
        from .formats_office import office_document

        return office_document(source, data)
    if b"\x00" in data:  # anywhere: NUL bytes after the first 64 KB were once indexed
        raise CorpusError(f"{source}: looks binary (contains NUL bytes), not a text document")
    if suffix in (".html", ".htm"):
        page = html_document(source, data)
        return replace(page, text=clean_controls(page.text))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{source}: not valid UTF-8 text (byte {exc.start})") from None
    marked = markup_text(source, text)
    if marked is None:
        return Extracted(text, Metadata())
    readable, fields = marked
    readable = clean_controls(readable)
    if not readable.strip():
        raise CorpusError(f"{source}: no text besides markup")
    return Extracted(readable, _meta_from_fields(source, fields))
