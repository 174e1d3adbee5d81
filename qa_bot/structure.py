"""A document's structure: its section headings, which of them name the section under each, and its lead
sentence. Pure functions over the text, and `Structure`, what they find, made once when a document is made
(ingest.Document) and read by retrieval (a sentence's label) and grounding (a sentence's section and lead)
for every question after, instead of parsing the text again for each."""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Sequence

from . import cite
from .cite import sentence_spans

# Characters: a heading this close above its sentence is cited with it as one span (ground), and a sentence
# this close to a document's start is read with the lead sentence when no heading stands above it.
SECTION_SPAN = 1500

_SECTION = r"(?:(?:Section|SECTION|Article|ARTICLE|§)\s*)?\d+(?:\.\d+)*[.)]?"  # "Section 4.", "8.", "1.2."
_NUMBERED = re.compile(_SECTION + r"(?:\s+[A-Z][^.\n]{0,70}\.?)?(?=\s|$)")
MARKUP = re.compile(r"^[#*=\-\s]+|[#*=\-\s]+$")  # a heading line's markup, around its words
# A release named in running text: a name and a dotted version ("bash-5.2", "release 6.0", "OpenSSL 3.0.7"),
# not an amount ("rose 2.7 billion", "$2.7", "9.5%").
RELEASE = re.compile(r"\b[A-Za-z][\w+]*[- ]v?\d+(?:\.\d+)+\b(?!\s*(?:%|percent|per\b|million|billion|trillion|thousand|bn\b))")
_LIST_ITEM = re.compile(r"^(?:\(?(?:[a-z]{1,2}|[ivx]{1,4})[.)]|[*+•-])\s")
_SECTION_NUMBER = re.compile(r"^\s*" + _SECTION + r"(?=\s|$)")


# "Changes between OpenSSL 1.1.0i and OpenSSL 1.1.1 [11 Sep 2018]": the section is 1.1.1's, but a small reader
# takes the first version it meets (it answered "1.1.0i").
_BETWEEN = re.compile(r"\bbetween\s", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_DATE_TAIL = re.compile(r"\[[^\[\]]*\]$")


def release_first(heading: str) -> str:
    """A "changes between A and B" heading as the reader is shown it: the release it describes first,
    "B [date] (changes since A)", when A and B both hold a digit. Other headings unchanged. Done in string
    steps, not one pattern: nested lazy groups backtracked for minutes on a crafted 1,800-character line."""
    m = _BETWEEN.search(heading)
    if not m:
        return heading
    what, rest = heading[:m.start()].strip(), heading[m.end():].strip()
    tail = _DATE_TAIL.search(rest)
    date = f" {tail.group(0)}" if tail else ""
    body = rest[:tail.start()] if tail else rest
    ands = list(_AND.finditer(body))
    if not ands:
        return heading
    old, new = body[:ands[-1].start()].strip(), body[ands[-1].end():].strip()  # A may hold "and"; B is after the last
    if not (re.search(r"\d", old) and re.search(r"\d", new)):
        return heading
    return f"{new}{date} ({f'{what} since'.lstrip()} {old})"


# Digits that are part of a name, not a release: "HTTP/1.1", "diff3", "IDNA2008", "UTF-8", "X11", "IPv6".
# "bash-5.2" and "v2" do name one. Not cite's _CODE: that one takes "v2" as a code and leaves the "1.1" of
# "HTTP/1.1", as an answer's numbers need.
_NAME_DIGITS = re.compile(r"\b(?![vV]\d)[A-Za-z]+-?\d+[A-Za-z]*\b(?!\.\d)|\b[A-Za-z]+/\d+(?:\.\d+)*")


def names_release(heading: str) -> bool:
    """Whether a heading names a release, version or date (a number other than its own section number or
    one inside a name): "Noteworthy changes in release 4.6", "Version 3, 29 June 2007", but not "8.
    Termination.", "1. New Features in Bash" nor "Support HTTP/1.1"."""
    return any(ch.isdigit() for ch in _NAME_DIGITS.sub(" ", _SECTION_NUMBER.sub("", heading, count=1)))


# How much further than the text below a centred title is set. Eight columns (a tab), not four: four is how far
# code samples are indented (Markdown, reStructuredText), and two short lines of code are no title.
CENTRED_INDENT = 8


def _centred_lines(lines: list[str]) -> set[int]:
    """Indices of lines in a centred title block: a paragraph of at most three short lines without closing
    punctuation, each set at least CENTRED_INDENT columns further than the paragraph below it ("GNU GENERAL PUBLIC LICENSE / Version 3, 29 June
    2007" over the licence's body; a tab-indented "Major changes between versions 581 and 590")."""
    paragraphs, run = [], []
    for i, line in enumerate(lines):
        if line.strip():
            run.append(i)
        elif run:
            paragraphs.append(run)
            run = []
    if run:
        paragraphs.append(run)
    def indent(i: int) -> int:
        return len(lines[i].expandtabs()) - len(lines[i].expandtabs().lstrip())

    out = set()
    for p, q in zip(paragraphs, paragraphs[1:]):
        titles = all(lines[i].strip()[-1] not in ".,;:" and len(lines[i].split()) <= cite.TITLE_MAX_WORDS for i in p)
        if len(p) <= 3 and titles and min(indent(i) for i in p) >= indent(q[0]) + CENTRED_INDENT:
            out.update(p)
    return out


def headings(text: str) -> list[tuple[int, int]]:
    """Spans of lines that look like section headings. text[start:end] is the heading, markup removed:
    - Markdown '#' lines, and org-style '*' lines when short and standing alone (not bullets);
    - short lines with no closing punctuation, unindented after a blank line and followed by a blank line,
      an underline or an indented body (not a list item), or in a centred title block;
    - numbered sections ("8. Termination.", "Section 4.");
    - the opening line of a document or of a part after a rule line, when it names a release ("This is a
      terse description of the new features added to bash-5.2 since"): it scopes what follows as a heading."""
    lines = text.splitlines(keepends=True)
    centred = _centred_lines(lines)
    out, pos = [], 0
    for i, line in enumerate(lines):
        body = line.strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else "\n"
        blank_before = i == 0 or not lines[i - 1].strip()
        if body:
            indent = len(line) - len(line.lstrip())
            short = (len(body) <= cite.TITLE_MAX_CHARS and len(body.split()) <= cite.TITLE_MAX_WORDS
                     and body[-1] not in ".,;" and re.search(r"[A-Za-z0-9]", body))
            alone = not nxt.strip() or set(nxt.strip()) <= set("=-~")  # a blank line or an underline below
            ends = alone or len(nxt) - len(nxt.lstrip()) > indent
            # "#" lines are headings (not a comment in indented code); "* Noteworthy changes in release 9.1",
            # "** Bug fixes" or "* Improvements" only when short and standing alone or over nested bullets;
            # "* Fixed a crash when" over its own continuation line is a bullet
            over_list = alone or (nxt.strip()[:1] in "*+•-" and len(nxt) - len(nxt.lstrip()) > indent)
            marked = (body.startswith("#") and indent <= 3) or (body.startswith("*") and short and over_list and indent == 0)
            numbered = _NUMBERED.match(body) if blank_before and indent <= 4 else None
            opens_part = i == 0 or (set(lines[i - 1].strip()) <= set("=-~*#_") and len(lines[i - 1].strip()) >= 3)
            release = (opens_part and indent == 0 and len(body) <= cite.TITLE_MAX_CHARS and body[-1] not in ".!?"
                       and not re.search(r"[.!?]\s", body) and RELEASE.search(body))
            item = _LIST_ITEM.match(body)  # "c. Rewrote the parser ...", "* Fixed ..." with a hanging indent: list items
            if body.lstrip("#* ") and (marked or (short and (blank_before and indent == 0 and ends
                                                             and (not item or over_list)
                                                             or i in centred))
                                       or release):
                m = MARKUP.sub("", body)
                if m:
                    start = pos + line.index(m)
                    out.append((start, start + len(m)))
            elif numbered:
                # A numbered section ("  8. Termination.", "2. Grant of Copyright License. Subject to ...",
                # "Section 4."): its number and title, up to the title's full stop, are the heading.
                start = pos + line.index(body)
                out.append((start, start + len(numbered.group(0).rstrip())))
        pos += len(line)
    return out


def _release_headings(spans: Sequence[tuple[int, int]], j: int, text: str) -> tuple[tuple[int, int], ...]:
    """spans[j], a heading naming a release, and the release heading right above it when only blank lines part
    them: together they name one section ("Version 8.1.7" over "Released 2023-08-17" in Pallets' changelogs;
    the date alone would leave the version out)."""
    if j > 0:
        a, b = spans[j - 1]
        if not text[b:spans[j][0]].strip() and names_release(text[a:b]):
            return ((a, b), spans[j])
    return (spans[j],)


def scopes(text: str, spans: Sequence[tuple[int, int]]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each heading of text (spans, in order), the headings that name the section under it: the heading
    and, when it names no release, the nearest one above it that does (the release, version or date:
    "Noteworthy changes in release 4.6" above "Bug fixes", "bash-5.2" above "1. New Features in Bash"); when it
    does, the release heading right above it too, if only blank lines part them ("Version 8.1.7" above
    "Released 2023-08-17")."""
    out, release = [], None  # release: the index of the nearest heading so far that names a release
    for i, (a, b) in enumerate(spans):
        if names_release(text[a:b]):
            out.append(_release_headings(spans, i, text))
            release = i
        else:
            out.append((*_release_headings(spans, release, text), (a, b)) if release is not None else ((a, b),))
    return tuple(out)


@dataclass(frozen=True)
class Structure:
    """What a document's text says of its own layout (made by Structure.of, once per document). Offsets are into
    that text."""

    length: int  # of the text
    headings: tuple[tuple[int, int], ...] = ()  # spans of its section headings, in order (headings())
    scopes: tuple[tuple[tuple[int, int], ...], ...] = ()  # per heading: the headings naming its section (scopes())
    lead: tuple[int, int] | None = None  # its first sentence, as split within its first SECTION_SPAN characters

    @classmethod
    def of(cls, text: str) -> Structure:
        spans = headings(text)
        lead = sentence_spans(text[:SECTION_SPAN])
        return cls(len(text), tuple(spans), scopes(text, spans), lead[0] if lead else None)

    def _above(self, offset: int) -> int:
        """The index of the last heading that starts at or before offset; -1 for none."""
        return bisect.bisect_right(self.headings, (offset, 1 << 62)) - 1

    def headings_at(self, offset: int) -> tuple[tuple[int, int], ...]:
        """The spans of the headings that name the section holding offset (the scope of the heading above it;
        none above it: none)."""
        i = self._above(offset)
        return self.scopes[i] if i >= 0 else ()

    def section(self, offset: int) -> tuple[int, int]:
        """The span of the section holding offset: from the heading above it (or the text's start) to the next
        heading (or the end). A text without headings is one section."""
        i = self._above(offset)
        return (self.headings[i][0] if i >= 0 else 0,
                self.headings[i + 1][0] if i + 1 < len(self.headings) else self.length)
