"""Markdown and reStructuredText made readable: markup dropped (links and images as their text, emphasis and code
markers, heading adornments, directives), and their metadata fields (a Markdown file's front matter, an RST file's
docinfo).
"""
from __future__ import annotations

import bisect
import logging
import re

from .formats_base import Metadata, clean_meta, file_suffix, squeeze_blank_lines

log = logging.getLogger("qa_bot")

FRONT_MATTER_MAX_CHARS = 64 * 1024  # a front matter block is a few lines of key: value; a longer one is not read

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


def meta_from_fields(source: str, fields: dict[str, str]) -> Metadata:
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
    return squeeze_blank_lines("\n".join(out))


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
    return squeeze_blank_lines("\n".join(out)), fields


def markup_text(source: str, text: str) -> tuple[str, dict[str, str]] | None:
    """The readable text and metadata fields of a Markdown or reStructuredText file named source (front matter,
    docinfo); None for any other kind of file, whose text is read as it is."""
    suffix = file_suffix(source)
    if suffix in (".md", ".markdown"):
        fields, body = _front_matter(text, source)
        return markdown_text(body), fields
    if suffix == ".rst":
        return rst_text(text)
    return None
