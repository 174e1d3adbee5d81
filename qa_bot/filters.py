"""Filters: which documents a question may be answered from. One definition (Filter) and one resolution to a
set of allowed document sources (document-level), which the index and retriever search is restricted to."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Mapping
from urllib.parse import urlparse

from .errors import FilterError
from .formats_base import Metadata, iso_date


FIELDS = ("source", "since", "until")  # the filter's keyword arguments, on QABot.ask, the API and the retriever


@dataclass(frozen=True)
class Filter:
    """source: a file path, file name, stem or glob ("reuters/*.html"), or a publisher or URL host; since/until:
    yyyy-mm-dd bounds on the publication date, inclusive. A document without a date never passes since/until."""

    source: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, source: str | None = None, since: str | None = None, until: str | None = None) -> "Filter":
        """A Filter from user input: dates checked and made ISO; FilterError says which value is wrong."""
        dates = {}
        for name, value in (("since", since), ("until", until)):
            try:
                dates[name] = iso_date(value) if value and str(value).strip() else ""
            except ValueError:
                raise FilterError(f"--{name} {str(value)[:40]!r} is not a date: use YYYY-MM-DD") from None
        if dates["since"] and dates["until"] and dates["since"] > dates["until"]:
            raise FilterError(f"--since {dates['since']} is after --until {dates['until']}: no date is in between")
        return cls(" ".join(str(source or "").split()), dates["since"], dates["until"])

    def __bool__(self) -> bool:
        return bool(self.source or self.since or self.until)

    def describe(self) -> str:
        parts = [f"--{k} {v}" for k, v in (("source", self.source), ("since", self.since), ("until", self.until)) if v]
        return " ".join(parts)

    def matches(self, source: str, meta: Metadata) -> bool:
        if self.source and not _source_matches(self.source, source, meta):
            return False
        if (self.since or self.until) and not meta.date:
            return False
        return not (self.since and meta.date < self.since) and not (self.until and meta.date > self.until)


def _source_matches(name: str, source: str, meta: Metadata) -> bool:
    want = name.lower()
    path = PurePosixPath(source.lower())
    host = (urlparse(meta.url).hostname or "").lower().removeprefix("www.")
    return (want in (str(path), path.name, path.stem, meta.publisher.lower(), host, "www." + host if host else "")
            or fnmatch.fnmatchcase(str(path), want) or fnmatch.fnmatchcase(path.name, want))


def allowed_sources(flt: Filter, metadata: Mapping[str, Metadata]) -> frozenset[str] | None:
    """The sources of the documents the filter lets through; None when there is no filter (all documents).
    Raises FilterError when it lets none through, saying so (and that undated documents fail since/until)."""
    if not flt:
        return None
    allowed = frozenset(src for src, meta in metadata.items() if flt.matches(src, meta))
    if not allowed:
        undated = sum(1 for m in metadata.values() if not m.date)
        note = (f"; {undated} of the {len(metadata)} documents have no date, and --since/--until leave those out"
                if (flt.since or flt.until) and undated else "")
        raise FilterError(f"no document matches {flt.describe()}{note} (see `qa-bot docs` for titles and dates)")
    return allowed
