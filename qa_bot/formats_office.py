"""Office and e-book formats: .docx (python-docx), .epub (ebooklib) and .odt (odfpy), as extracted text and metadata.

Each document becomes plain text in reading order, one block (a paragraph, a heading, a table row, a list item)
per paragraph of text, blocks parted by a blank line: the sentence splitter then never runs a heading or a table
row into the sentence after it, and a heading stands alone on its line, where retrieve.headings() finds it.
Table rows are their cells joined by " | ". As for every format, the citations are offsets into this text.

All three are zip archives, and a few kilobytes of zip can claim gigabytes of XML: the archive's table of contents
is checked before any library opens it (member count and declared uncompressed sizes; Python's zipfile never
inflates a member past its declared size, so the check bounds what is read). Their XML is parsed without
resolving entities (python-docx and ebooklib turn entity resolution off; odfpy parses through defusedxml).
"""
from __future__ import annotations

import io
import logging
import zipfile
from typing import Iterable, Iterator

from .errors import CorpusError
from .formats_base import Extracted, Metadata, clean_meta

log = logging.getLogger("qa_bot")

BLOCK_BREAK = "\n\n"  # between blocks: paragraphs, headings, table rows
CELL_BREAK = " | "  # between the cells of a table row
# What an archive may unpack to, and hold. A document of max_file_bytes (8 MB) of ordinary text and pictures
# unpacks to a few times its size; far past that it is a zip bomb, and parsing it would take the memory of the
# machine (python-docx and odfpy hold the whole XML tree).
MAX_UNZIPPED_BYTES = 128 * 1024 * 1024
MAX_MEMBERS = 10_000
NAMES = {".docx": "Word document (DOCX)", ".epub": "EPUB book", ".odt": "OpenDocument text (ODT)"}


def office_document(source: str, data: bytes) -> Extracted:
    """The text and metadata of a .docx, .epub or .odt file; CorpusError saying why when it cannot be read."""
    suffix = "." + source.rsplit(".", 1)[-1].lower()
    kind = NAMES[suffix]
    check_archive(source, data, kind)
    read = {".docx": _docx, ".epub": _epub, ".odt": _odt}[suffix]
    try:
        blocks, meta = read(source, data)
    except CorpusError:
        raise
    except Exception as exc:  # each library raises its own kinds (KeyError, lxml, its own exceptions) on bad files
        raise CorpusError(f"{source}: not a readable {kind} ({type(exc).__name__}: {' '.join(str(exc).split())[:80]})") from None
    text = join_blocks(blocks)
    if not text.strip():
        raise CorpusError(f"{source}: the {kind} has no text")
    return Extracted(text, meta)


def check_archive(source: str, data: bytes, kind: str) -> None:
    """CorpusError unless data is a zip archive within MAX_MEMBERS members and MAX_UNZIPPED_BYTES unpacked,
    judged from its table of contents alone (nothing is inflated here)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise CorpusError(f"{source}: not a readable {kind} (not a zip archive: {str(exc)[:60]})") from None
    if len(members) > MAX_MEMBERS:
        raise CorpusError(f"{source}: the {kind} holds {len(members):,} files, more than the {MAX_MEMBERS:,} a "
                          "document may hold (not read)")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNZIPPED_BYTES:
        raise CorpusError(f"{source}: the {kind} unpacks to {unpacked / 1e6:,.0f} MB, over the "
                          f"{MAX_UNZIPPED_BYTES / 1e6:.0f} MB a document may (a zip bomb?); not read")


def join_blocks(blocks: Iterable[str]) -> str:
    """Blocks, each with its white space runs inside a line kept but blank lines squeezed out, parted by BLOCK_BREAK."""
    out = []
    for b in blocks:
        lines = [ln.rstrip() for ln in b.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        b = "\n".join(ln for ln in lines if ln.strip()).strip()
        if b:
            out.append(b)
    return BLOCK_BREAK.join(out) + "\n" if out else ""


def _row(cells: Iterable[str]) -> str:
    """A table row as one line: its cells' text, each on one line, joined by CELL_BREAK (empty cells left out)."""
    return CELL_BREAK.join(" ".join(c.split()) for c in cells if c and c.strip())


# --- DOCX -----------------------------------------------------------------------------------------------------
def _docx(source: str, data: bytes) -> tuple[list[str], Metadata]:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    blocks: list[str] = []
    for item in document.iter_inner_content():  # paragraphs and tables in document order
        if isinstance(item, Table):
            blocks.extend(_docx_rows(item))
        else:
            blocks.append(item.text)
    p = document.core_properties
    when = p.created or p.modified  # a datetime, or None
    meta = clean_meta(source, title=p.title or "", author=p.author or "", date=when.isoformat() if when else "",
                      url=p.identifier if (p.identifier or "").startswith(("http://", "https://")) else "")
    return blocks, meta


def _docx_rows(table) -> Iterator[str]:
    """Each row of a Word table as a line; a merged cell, which python-docx repeats, is kept once; a table in a
    cell is read as the cell's text."""
    for row in table.rows:
        seen, cells = set(), []
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text)
        yield _row(cells)


# --- EPUB -----------------------------------------------------------------------------------------------------
_SKIP_TAGS = {"script", "style", "head", "title", "nav", "template", "svg", "math"}
_BLOCK_TAGS = {"p", "div", "section", "article", "header", "footer", "aside", "blockquote", "pre", "li", "ul", "ol",
               "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "figure", "figcaption", "hr",
               "body", "main", "address", "caption"}
_CELL_TAGS = {"td", "th"}


def _epub(source: str, data: bytes) -> tuple[list[str], Metadata]:
    import warnings

    from ebooklib import ITEM_DOCUMENT, epub

    with warnings.catch_warnings():  # its notes about future defaults are for its own callers, not ours to show
        warnings.simplefilter("ignore")
        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    blocks: list[str] = []
    seen = set()
    for idref, _linear in book.spine:  # the reading order
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ITEM_DOCUMENT or idref in seen:
            continue
        seen.add(idref)
        blocks.extend(html_blocks(item.get_content()))

    def first(name: str) -> str:
        found = book.get_metadata("DC", name)
        return str(found[0][0]) if found and found[0] and found[0][0] else ""

    ident = first("identifier")
    meta = clean_meta(source, title=first("title"), author=first("creator"), date=first("date"),
                      publisher=first("publisher"), url=ident if ident.startswith(("http://", "https://")) else "")
    return blocks, meta


def html_blocks(markup: bytes) -> list[str]:
    """The text blocks of one XHTML chapter: each block element's own text, a table row as one line; scripts,
    styles and the navigation left out. The parser neither fetches nor expands anything (lxml's HTML parser,
    no network)."""
    if not markup or not markup.strip():
        return []
    from lxml import etree, html

    parser = html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)
    try:
        root = html.fromstring(markup, parser=parser)
    except (etree.ParserError, ValueError):
        return []
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append("".join(current))
            current.clear()

    # Iterative walk: a deeply nested chapter cannot exhaust the stack.
    stack: list[tuple[etree._Element, bool]] = [(root, False)]
    while stack:
        el, closing = stack.pop()
        tag = _tag(el)
        if closing:
            if tag in _BLOCK_TAGS:
                flush()
            elif tag in _CELL_TAGS:
                current.append(CELL_BREAK)
        elif tag == "tr":
            flush()
            blocks.append(_row(c.text_content() for c in el if _tag(c) in _CELL_TAGS))
        elif tag == "br":
            current.append(_LINE)
        elif tag and tag not in _SKIP_TAGS:
            if tag in _BLOCK_TAGS:
                flush()
            if el.text:
                current.append(el.text)
            stack.append((el, True))  # its tail comes after its children, when it closes
            stack.extend((child, False) for child in reversed(el))
            continue
        if el.tail:  # an element closed, or one read or left out whole (a row, a <br>, a script, a comment)
            current.append(el.tail)
    flush()
    # Source line breaks inside a paragraph are white space; only <br> breaks a line.
    return ["\n".join(" ".join(part.split()) for part in b.split(_LINE)) for b in blocks]


def _tag(el) -> str:
    """An element's tag without namespace, lower case; "" for comments and processing instructions."""
    return el.tag.rsplit("}", 1)[-1].lower() if isinstance(el.tag, str) else ""


_LINE = "\ue000"  # a <br> while a block is gathered (a private-use character: no document text holds it)


# --- ODT ------------------------------------------------------------------------------------------------------
def _odt(source: str, data: bytes) -> tuple[list[str], Metadata]:
    from odf import teletype
    from odf.namespaces import TABLENS, TEXTNS
    from odf.opendocument import load

    document = load(io.BytesIO(data))
    blocks: list[str] = []
    paragraph = {(TEXTNS, "p"), (TEXTNS, "h")}
    row, cell = (TABLENS, "table-row"), (TABLENS, "table-cell")
    skip = {(TEXTNS, "tracked-changes"), (TEXTNS, "sequence-decls"), (TEXTNS, "variable-decls")}
    stack = list(reversed(document.text.childNodes))
    while stack:  # iterative: deeply nested sections or lists cannot exhaust the stack
        node = stack.pop()
        qname = getattr(node, "qname", None)
        if qname in paragraph:
            blocks.append(teletype.extractText(node))
        elif qname == row:
            blocks.append(_row(" ".join(teletype.extractText(p) for p in c.childNodes if getattr(p, "qname", None)
                                        in paragraph) for c in node.childNodes if getattr(c, "qname", None) == cell))
        elif qname not in skip and getattr(node, "childNodes", None):
            stack.extend(reversed(node.childNodes))
    return blocks, _odt_meta(source, document)


def _odt_meta(source: str, document) -> Metadata:
    from odf.namespaces import DCNS, METANS

    found: dict[tuple[str, str], str] = {}
    for node in document.meta.childNodes:
        qname = getattr(node, "qname", None)
        if qname and qname not in found:
            found[qname] = "".join(str(t) for t in node.childNodes if getattr(t, "nodeType", 0) == t.TEXT_NODE)
    return clean_meta(source, title=found.get((DCNS, "title"), ""),
                      author=found.get((METANS, "initial-creator")) or found.get((DCNS, "creator"), ""),
                      date=found.get((METANS, "creation-date")) or found.get((DCNS, "date"), ""))
