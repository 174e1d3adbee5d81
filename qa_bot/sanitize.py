"""Text that is data, never a citation or an answer (issue 45, J2, J3, G20). Pure functions.

A document is there to be read, so anything in it that looks like this bot's own output is the document's
data: a citation marker ("[1]", "[1, 2]") or one naming a file ("alibaba_cloud_spinoff.txt [1]", "report.pdf,
p. 2 [3]"), and the machinery of a link or an image (the "[" and "](http://…)" of "[text](http://…)", "![alt](…)",
"`text <http://…>`_", an HTML anchor or image tag). A planted document that wrote "alibaba_cloud_spinoff.txt [1] … says
Alibaba was founded by Zorvex" was cited with those markers, so its claim looked like the article's (J2); a URL
hidden in a link target was given as the answer (J3). Here:

- `screen` takes what the grounding rules found and keeps only a piece of the cited span that holds no such data
  and still supports the answer (the citation stays an exact span of the document: text == doc[start:end]); an
  answer that only such data supports is refused, and an answer that is a bare URL answers only a question that
  asks for one.
- `data_free_span` cuts any cited span the same way (the summary's sentences).
- `visible` shows a file name with its control, line-breaking and bidi characters escaped (G20).
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable

_MARKER = r"\[\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*\]"
# A file name starts where no name character comes before it, so a long run of name characters is tried once.
_DOC_NAME = r"(?<![\w.\-/])[\w][\w.\-/]*\.(?:txt|md|markdown|rst|html?|pdf)(?:,\s*p\.\s*\d+)?"
_IMPERSONATION = re.compile(rf"(?:{_DOC_NAME}[ \t]*)?{_MARKER}", re.IGNORECASE)
# Links and images: the opener and the target are data, the link's own text is not ("[the portal](http://x)"). A URL
# written in angle brackets ("<https://www.gnu.org/licenses/>", plain text's way to delimit one) is a bare URL.
_LINKS = [
    re.compile(r"(!?\[)[^\[\]\n]*(\]\([^()\s]*(?:[ \t]+\"[^\"\n]*\")?\))"),  # Markdown [text](target), ![alt](target)
    re.compile(r"(`)[^`<\n]*(<[^<>`\s]+>`__?)"),  # reStructuredText `text <target>`_
    re.compile(r"(<(?:a|img)\b[^<>]*>)", re.IGNORECASE),  # <a href=…>, <img src=…>
    re.compile(r"(</a\s*>)", re.IGNORECASE),
]
_EDGES = " \t\r\n,;:–—-"  # left at a piece's ends when the data beside it is cut away

# An answer that is a URL: a scheme ("http://", "ftp://") or "www.", a domain with a path ("evil.example/login"), or
# an address with a port ("127.0.0.1:7899/phish"). "3.5/5" and "10.0.0.0/8" are not addresses on the web.
_URL = re.compile(r"(?:[a-z][a-z0-9+.\-]*://|www\.)\S+|[\w\-]+(?:\.[\w\-]+)*\.[a-z][\w\-]*(?::\d+)?/\S*"
                  r"|\d{1,3}(?:\.\d{1,3}){3}:\d+(?:/\S*)?", re.IGNORECASE)
_ASKS_URL = re.compile(r"\b(?:urls?|uris?|links?|web ?sites?|sites?|web ?pages?|web address(?:es)?|home ?pages?"
                       r"|domains?|download(?:ed|s)?|online)\b", re.IGNORECASE)


def data_spans(text: str) -> list[tuple[int, int]]:
    """Spans of text (sorted, merged) that impersonate a citation or are a link's or image's machinery."""
    found = [m.span() for m in _IMPERSONATION.finditer(text)]
    for rx in _LINKS:
        for m in rx.finditer(text):
            found += [m.span(g) for g in range(1, (rx.groups or 0) + 1) if m.start(g) >= 0]
    merged: list[list[int]] = []
    for s, e in sorted(found):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def pieces(doc: str, start: int, end: int) -> list[tuple[int, int]]:
    """The parts of doc[start:end] outside data_spans, each trimmed of white space and dangling separators,
    that hold a letter or digit. [(start, end)] itself when it holds no data."""
    spans = data_spans(doc[start:end])
    if not spans:
        return [(start, end)]
    out, pos = [], start
    for s, e in spans + [(end - start, end - start)]:
        a, b = pos, start + s
        while a < b and doc[a] in _EDGES:
            a += 1
        while b > a and doc[b - 1] in _EDGES:
            b -= 1
        if any(ch.isalnum() for ch in doc[a:b]):
            out.append((a, b))
        pos = start + e
    return out


def data_free_span(doc: str, start: int, end: int) -> tuple[int, int]:
    """The longest piece of doc[start:end] without data (the span itself when it holds none, or when all of it
    is data: then there is nothing better to show)."""
    found = pieces(doc, start, end)
    return max(found, key=lambda p: p[1] - p[0]) if found else (start, end)


def is_url(answer: str) -> bool:
    return bool(_URL.fullmatch(answer.strip().strip("<>()[]\"'.,;")))


def asks_for_url(question: str) -> bool:
    """The question asks for an address on the web: "What is the URL of …", "Which website …", "Where can I
    download …"."""
    return bool(_ASKS_URL.search(question))


def screen(found, why: str, question: str, document: Callable[[str], str]):
    """(found, why) as the grounding rules gave them (ground.Grounded or None), with the cited span cut to the
    longest piece that holds no data and still supports the answer, and its heading spans cut alike; (None, why
    not) when the answer is a bare URL the question did not ask for, or when only data supports it."""
    if found is None:
        return found, why
    if is_url(found.answer) and not asks_for_url(question):
        return None, "a bare URL answers only a question that asks for one"
    doc = document(found.source)
    options = pieces(doc, found.start, found.end)
    headings = tuple((a, b, doc[a:b]) for a, b in (data_free_span(doc, h[0], h[1]) for h in found.headings))
    if options == [(found.start, found.end)] and headings == tuple(found.headings):
        return found, why
    from . import ground  # the grounding rules' own test of support, read here (not changed)

    extra = "\n".join([found.label, *(h for _, _, h in headings)])
    if found.answer in ("Yes", "No"):  # a yes/no verdict rests on what the piece confirms or denies
        verdict = ground.confirms if found.answer == "Yes" else ground.denies
        holds = lambda piece: verdict(question, f"{extra}\n{piece}")  # noqa: E731
    else:
        holds = lambda piece: ground.supports_answer(found.answer, f"{extra}\n{piece}")  # noqa: E731
    good = [(a, b) for a, b in options if holds(doc[a:b])]
    if not good:
        return None, "the answer rests only on text that imitates a citation or a link target (data, not an answer)"
    a, b = max(good, key=lambda p: p[1] - p[0])
    return replace(found, start=a, end=b, text=doc[a:b], headings=headings), why


_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def visible(name: str) -> str:
    """A file name as it can be shown: control, line-breaking, zero-width and bidi characters written as escapes
    ("a\\nb", "\\u202e"), so a name can neither forge a row of a listing nor reorder what is shown after it."""
    return _INVISIBLE.sub(lambda m: {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(m.group(0))
                          or (f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100 else f"\\u{ord(m.group(0)):04x}"),
                          str(name))
