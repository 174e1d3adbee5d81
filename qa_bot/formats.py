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
    """Metadata from raw values: whitespace collapsed; a date that cannot be parsed is dropped with a warning
    naming the file (the document is indexed without it)."""
    fields = {k: " ".join(str(v or "").split()) for k, v in
              dict(title=title, author=author, url=url, publisher=publisher, description=description, site=site).items()}
    iso = ""
    if date:
        try:
            iso = iso_date(date)
        except ValueError as exc:
            log.warning("%s: date ignored: %s", source, exc)
    return Metadata(date=iso, **fields)


# --- Markdown and reStructuredText ------------------------------------------------------------------------
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_MD_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image: its alt text
    (re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)"), r"\1"),  # [text](url "title")
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # <https://...>
    (re.compile(r"`+([^`]+?)`+"), r"\1"),  # `code`
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # **strong**
    (re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])"), r"\2"),  # *emphasis*
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"</?[A-Za-z][^>\n]*>"), ""),  # inline HTML tags
]
_MD_LINE = [
    (re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$"), r"\1"),  # ATX heading
    (re.compile(r"^\s{0,3}>\s?"), ""),  # block quote
    (re.compile(r"^(\s*)[*+]\s+"), r"\1- "),  # bullets as "- "
]
_MD_DROP = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$|^\s{0,3}(?:[=\-]{3,}|\*{3,}|_{3,})\s*$")
_MD_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
# A line of badges: images alone, each perhaps inside a link ("[![Build Status](…badge.svg)](…)"). Their alt
# text is no sentence, and on a README's first line it would be taken for the title.
_MD_BADGES = re.compile(r"^\s*(?:\[?!\[[^\]\n]*\]\([^)\s]*\)(?:\]\([^)\s]*\))?\s*)+$")

_RST_INLINE = [
    (re.compile(r":[\w:+.-]+:`([^`<]*?)\s*<[^>]*>`"), r"\1"),  # :role:`text <target>`
    (re.compile(r":[\w:+.-]+:`([^`]*)`"), r"\1"),  # :role:`text`
    (re.compile(r"`([^`<]+?)\s*<[^>]+>`__?"), r"\1"),  # `text <url>`_
    (re.compile(r"`([^`]+)`__?"), r"\1"),  # `text`_
    (re.compile(r"``(.+?)``"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"\1"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
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


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """A leading `---` block of `key: value` lines (a simple subset of YAML, read without any YAML loader: nothing
    in it is executed or expanded) and the text after it."""
    m = _FRONT.match(text)
    if not m:
        return {}, text
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
        for rx, sub in _MD_LINE:
            line = rx.sub(sub, line)
        for rx, sub in _MD_INLINE:
            line = rx.sub(sub, line)
        out.append(line.rstrip())
    return _squeeze("\n".join(out))


def rst_text(text: str) -> tuple[str, dict[str, str]]:
    """reStructuredText as readable text, and its bibliographic fields (:Date:, :Author:, ...): roles and links
    as their text, heading adornments and directive lines removed, an admonition's line kept as its text."""
    out, fields = [], {}
    for line in text.splitlines():
        a = _RST_ADMONITION.match(line)
        if a:
            indent, kind, rest = a.groups()
            line = f"{indent}{_ADMONITION_WORDS.get(kind.lower(), kind.capitalize() + ':')} {rest}".rstrip()
        elif _RST_ADORN.match(line) or _RST_DIRECTIVE.match(line.strip()):
            continue
        m = _RST_FIELD.match(line)
        if m and sum(1 for x in out if x.strip()) <= 1:  # docinfo: fields at the top, under the title
            fields[m.group(1).strip().lower()] = m.group(2).strip()
            continue
        if line.rstrip().endswith("::"):  # "Example::" introduces a literal block: keep "Example:"
            line = line.rstrip()[:-1]
        for rx, sub in _RST_INLINE:
            line = rx.sub(sub, line)
        out.append(line.rstrip())
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


_TITLE_TAG = re.compile(rb"<title[^>]*>([^<]{1,400})</title>", re.I)
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


def pdf_document(source: str, data: bytes, ocr: "OcrOptions | None" = None) -> Extracted:
    """Text of a PDF, page by page (pages joined by a blank line; Extracted.pages says where each starts), and its
    metadata (Title, Author, CreationDate). A page without a text layer (a scan) is read by OCR (ocr.py; `ocr`
    None: its defaults, nothing cached). An encrypted PDF, or one no page of which has text, is refused."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes ("EOF marker not found"): our reason says it
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many PDFs are "encrypted" with an empty password, only to stop edits
            except Exception:
                opened = 0
            if not opened:
                raise CorpusError(f"{source}: the PDF is encrypted (password-protected), so its text cannot be read")
        parts = [(page.extract_text() or "").strip() for page in reader.pages]
        scanned = _ocr_blank_pages(source, reader, parts, ocr)
        info = reader.metadata or {}
    except CorpusError:
        raise
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
        fields, body = _front_matter(text)
        return markdown_text(body), fields
    if suffix == ".rst":
        return rst_text(text)
    return None


def extract(source: str, data: bytes, ocr: "OcrOptions | None" = None) -> Extracted:
    """The readable text and metadata of one file, by its suffix. Raises CorpusError saying why a file cannot be
    used (empty, binary, not UTF-8, an HTML page with no article text, an encrypted PDF or a scanned one OCR
    cannot read, a damaged or oversized .docx/.epub/.odt). `ocr`: how scanned PDF pages are read."""
    if not data.strip():
        raise CorpusError(f"{source}: empty file")
    suffix = _suffix(source)
    if suffix == ".pdf":
        return pdf_document(source, data, ocr)
    if suffix in OFFICE_SUFFIXES:
        from .formats_office import office_document

        return office_document(source, data)
    if b"\x00" in data:  # anywhere: NUL bytes after the first 64 KB were once indexed
        raise CorpusError(f"{source}: looks binary (contains NUL bytes), not a text document")
    if suffix in (".html", ".htm"):
        return html_document(source, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{source}: not valid UTF-8 text (byte {exc.start})") from None
    marked = markup_text(source, text)
    if marked is None:
        return Extracted(text, Metadata())
    readable, fields = marked
    if not readable.strip():
        raise CorpusError(f"{source}: no text besides markup")
    return Extracted(readable, _meta_from_fields(source, fields))
