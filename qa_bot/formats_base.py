"""What every format reader returns and shares: Extracted (the text, its Metadata, a PDF's page offsets), the Limits
on reading one document, and the clean-up each format's text and metadata gets (control characters and terminal
escapes removed, dates read as yyyy-mm-dd, over-long values cut).
"""
from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, replace
from datetime import date

from .errors import CorpusError

log = logging.getLogger("qa_bot")

# Metadata is a line of a listing: a title, a date, a name, a URL. Longer values (a 1 MB "title" in a PDF's Info
# or a sidecar) are cut here, so no listing, page header or citation carries them.
META_MAX_CHARS = 2000

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


def squeeze_blank_lines(text: str) -> str:
    """text with runs of blank lines cut to one, no blank line at either end, and one final newline."""
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def file_suffix(source: str) -> str:
    """The lower-cased suffix of a file name (".md"), "" when it has none."""
    return "." + source.rsplit(".", 1)[-1].lower() if "." in source else ""
