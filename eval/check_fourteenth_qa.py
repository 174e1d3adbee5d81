"""Check fourteenth_qa.jsonl against fourteenth_corpus/ (standard library only).

- every line is a JSON object with the fields of the question-file format; ids unique;
- answerable questions have answers and an evidence string; unanswerable ones have answers [] and no evidence;
- every evidence string occurs verbatim (after whitespace normalisation) in the VISIBLE text of its source page:
  text nodes outside script/style/noscript/template/svg/iframe/textarea/title and comments, entities decoded,
  with a line break at block-level element boundaries and nothing inserted at inline boundaries (as a browser
  lays out text);
- counts by kind and by page.

    python3 check_fourteenth_qa.py          # exit 0 when all checks pass
"""

import json
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
QA = HERE / "fourteenth_qa.jsonl"
CORPUS = HERE / "fourteenth_corpus"
SKIP = {"script", "style", "noscript", "template", "svg", "iframe", "textarea", "title"}
BLOCK = {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "br", "td", "th", "tr", "table",
         "section", "article", "header", "footer", "figure", "figcaption", "blockquote", "nav", "aside", "main",
         "form", "hr", "dd", "dt", "dl", "pre", "option", "body", "html", "head"}


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
HIDDEN_CLASS = re.compile(r"(^|[\s_-])(visually-?hidden|sr-only|screen-?reader[\w-]*|offscreen|hidden)($|\s)", re.I)
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def is_hidden(attrs) -> bool:
    a = dict(attrs)
    return ("hidden" in a or HIDDEN_CLASS.search(a.get("class") or "") is not None
            or HIDDEN_STYLE.search(a.get("style") or "") is not None)


class VisibleText(HTMLParser):
    """parts: all rendered text; shown: the same less the text of elements hidden by class, style or the
    hidden attribute (screen-reader labels, collapsed menus)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.shown: list[str] = []
        self.skip: list[str] = []  # open skipped elements
        self.open: list[tuple[str, bool]] = []  # open non-void elements and whether each hides its content

    def hidden(self) -> bool:
        return any(h for _, h in self.open)

    def add(self, s: str):
        self.parts.append(s)
        if not self.hidden() or s == "\n":
            self.shown.append(s)

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append((tag, is_hidden(attrs)))
        if tag in SKIP:
            self.skip.append(tag)
        elif tag in BLOCK:
            self.add("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK:
            self.add("\n")

    def handle_endtag(self, tag):
        if any(t == tag for t, _ in self.open):
            while self.open:  # close up to the matching open element
                if self.open.pop()[0] == tag:
                    break
        if tag in SKIP:
            while self.skip:
                if self.skip.pop() == tag:
                    break
        elif tag in BLOCK:
            self.add("\n")

    def handle_data(self, data):
        if not self.skip:
            self.add(data)


def visible_text(path: Path, shown_only: bool = False) -> str:
    parser = VisibleText()
    raw = path.read_bytes()
    match = re.search(rb'charset=["\']?([A-Za-z0-9_-]+)', raw[:4096])
    encoding = match.group(1).decode() if match else "utf-8"
    try:
        text = raw.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        text = raw.decode("utf-8", errors="replace")
    parser.feed(text)
    parser.close()
    return norm("".join(parser.shown if shown_only else parser.parts))


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.replace("\u00a0", " ")).strip()


def main() -> int:
    problems: list[str] = []
    kinds: Counter = Counter()
    per_page: Counter = Counter()
    ids: set[str] = set()
    texts: dict[str, str] = {}
    lines = QA.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            q = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"line {n}: not JSON ({err})")
            continue
        qid = q.get("id")
        if qid in ids:
            problems.append(f"line {n}: duplicate id {qid}")
        ids.add(qid)
        for field in ("id", "question", "answers", "answerable", "source"):
            if field not in q:
                problems.append(f"{qid}: missing {field}")
        src = q.get("source", "")
        if not (CORPUS / src).is_file():
            problems.append(f"{qid}: no page {src}")
            continue
        per_page[src] += 1
        answers, evidence = q.get("answers", []), q.get("evidence")
        if q.get("answerable"):
            if not answers or not evidence:
                problems.append(f"{qid}: answerable but answers or evidence empty")
                continue
            yes_no = answers[0] in ("Yes", "No")
            kinds["yes/no " + answers[0] if yes_no else "factual"] += 1
            for a in answers:
                if len(a.split()) > 5:
                    problems.append(f"{qid}: answer longer than 5 words: {a!r}")
            if src not in texts:
                texts[src] = visible_text(CORPUS / src)
                texts[src + "#shown"] = visible_text(CORPUS / src, shown_only=True)
            if norm(evidence) not in texts[src]:
                problems.append(f"{qid}: evidence not in visible text of {src}: {evidence!r}")
            elif norm(evidence) not in texts[src + "#shown"]:
                problems.append(f"{qid}: evidence only in hidden elements of {src}: {evidence!r}")
            elif not yes_no and not any(norm(a).lower() in norm(evidence).lower() for a in answers):
                print(f"note {qid}: no listed answer occurs literally in the evidence")
        else:
            kinds["unanswerable"] += 1
            if answers or evidence:
                problems.append(f"{qid}: unanswerable but has answers or evidence")
    print(f"{len(lines)} questions, {len(ids)} unique ids")
    print("by kind:", dict(kinds))
    print("by page:", dict(sorted(per_page.items())))
    for p in problems:
        print("FAIL", p)
    print(f"{len(lines) - len({p.split(':')[0] for p in problems})} passed, "
          f"{len({p.split(':')[0] for p in problems})} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
