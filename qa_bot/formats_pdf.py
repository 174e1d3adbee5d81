"""PDF: a document's text page by page through pypdf (a citation names the page), a scanned page read by OCR
(ocr.py), its metadata (Title, Author, CreationDate), all within the Limits of one document.
"""
from __future__ import annotations

import io
import logging
import time
from typing import TYPE_CHECKING, Any, Mapping

from .errors import CorpusError
from .formats_base import Extracted, Limits, clean_controls, clean_meta

if TYPE_CHECKING:
    from .ocr import OcrOptions

log = logging.getLogger("qa_bot")

PAGE_BREAK = "\n\n"  # between the pages of a PDF in its extracted text

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



def pdf_document(source: str, data: bytes, limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Extracted:
    """Text of a PDF, page by page (pages joined by a blank line; Extracted.pages says where each starts), and its
    metadata (Title, Author, CreationDate). A page without a text layer (a scan) is read by OCR (ocr.py; `ocr`
    None: its defaults, nothing cached). An encrypted PDF, or one no page of which has text, is refused; with
    limits, so is one whose text passes limits.max_chars or whose reading passes limits.seconds (checked between
    pages and as pypdf hands over text; a child process's owner also stops it from outside, qa_bot.extractor)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes ("EOF marker not found"): our reason says it
    until = time.monotonic() + limits.seconds if limits else float("inf")
    seen = 0  # characters pypdf has handed over so far

    def budget(text="", *_):
        nonlocal seen
        seen += len(text)
        if limits and (seen > limits.max_chars or time.monotonic() > until):
            raise _OverBudget

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            opened: int  # pypdf's PasswordType, an IntEnum whose NOT_DECRYPTED is 0
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
        info: Mapping[Any, Any]
        try:
            info = reader.metadata or {}
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:  # the text is still good
            log.warning("%s: PDF metadata ignored: not readable (%s)", source, type(exc).__name__)
            info = {}
    except CorpusError:
        raise
    except _OverBudget:
        assert limits is not None  # budget() raises it only under limits
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
