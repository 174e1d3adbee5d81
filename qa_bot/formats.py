"""Formats stage: turn one file's bytes into the text that is chunked, cited and highlighted, plus its metadata.

The extracted text is the document from then on: chunks, citations and highlights are offsets into it
(`extracted[start:end] == citation.text`), so quotes never show markup (roles, link syntax, tags). Formats:
.txt as it is; .md/.markdown and .rst with their markup made readable; .html/.htm through trafilatura (main
text; menus, scripts and boilerplate dropped); .pdf through pypdf, page by page (a citation names the page), a
scanned page read by OCR (ocr.py); .docx, .epub and .odt in formats_office.py.

This module picks the reader by the file's suffix: formats_markup.py (Markdown, reStructuredText), formats_html.py,
formats_pdf.py, formats_office.py; what they return and share (Extracted, Metadata, Limits): formats_base.py.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import CorpusError
from .formats_base import Extracted, Limits, Metadata, clean_controls, file_suffix
from .formats_html import html_document
from .formats_markup import markup_text, meta_from_fields
from .formats_pdf import pdf_document

if TYPE_CHECKING:
    from .ocr import OcrOptions

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
OFFICE_SUFFIXES = (".docx", ".epub", ".odt")  # formats_office.py
DOC_SUFFIXES = (*TEXT_SUFFIXES, ".html", ".htm", ".pdf", *OFFICE_SUFFIXES)


def extract_here(source: str, data: bytes, limits: Limits | None = None, ocr: "OcrOptions | None" = None) -> Extracted:
    """The readable text and metadata of one file, by its suffix, read in this process (limits: checked between
    steps). extractor.extract is the entry point: it runs this in a child process under a hard budget where the
    limits ask for one."""
    found = _extract(source, data, limits, ocr)
    if limits is not None:
        limits.check(source, len(found.text))
    return found


def _extract(source: str, data: bytes, limits: Limits | None, ocr: "OcrOptions | None" = None) -> Extracted:
    if not data.strip():
        raise CorpusError(f"{source}: empty file")
    suffix = file_suffix(source)
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
    return Extracted(readable, meta_from_fields(source, fields))
