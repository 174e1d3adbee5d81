"""HTML: a web page's main text (trafilatura: menus, scripts and boilerplate dropped) and its metadata."""
from __future__ import annotations

import logging
import re

from .errors import CorpusError
from .formats_base import Extracted, Metadata, clean_meta, squeeze_blank_lines

MIN_PARAGRAPH_WORDS = 6  # a rescued HTML text with no line this long is menus ("Home Menu"), not an article


def html_document(source: str, data: bytes) -> Extracted:
    """Main text of a web page (trafilatura: menus, scripts, footers dropped) and its metadata (Open Graph,
    article:published_time, <title>, author, canonical URL, site name)."""
    import trafilatura

    for name in ("trafilatura", "htmldate", "courlan"):  # their notes ("discarding data: None"): our reason says it
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        text = _extract(data, fast=True)
        if not text:  # the fallback extractors (readability, jusText) rescue some layouts, and take menus on others
            text = _extract(data, fast=False) or ""
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
    return Extracted(squeeze_blank_lines(text), meta)


def _extract(data: bytes, fast: bool) -> str | None:
    """trafilatura's plain text of the page; fast skips its fallback extractors."""
    import trafilatura

    return trafilatura.extract(data, fast=fast, output_format="txt", include_comments=False, include_tables=True,
                               favor_precision=True, deduplicate=False, with_metadata=False)


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
