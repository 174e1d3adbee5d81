"""Comments and docstrings in qa_bot/ say why, not when: no dates, no evaluation rounds, no names of eval sets.

A date ("measured 2026-11-26"), a round ("round 25", "this round", "the tenth round") or an eval set's name
("eighth_test", "news tuning") dates a comment the day it is written: the reader cannot tell whether it still holds,
and the code does not need it to explain itself. The figures behind a choice belong in eval/journal/,
docs/performance.md or benchmarks/README.md, where they are dated on purpose; the comment keeps the reason.

A quoted example is data, not a date: "Released 2023-08-17" in double quotes or backticks is not a finding.
Only comments (tokenize) and docstrings (ast) are read; string literals are the program's own data.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDINAL = (r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
           r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty-\w+")
SET_NAMES = r"news|licen[cs]es|readmes|fresh|paraphrase|compare|counts"
RULES = {
    "date": re.compile(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b"),
    "round": re.compile(rf"\brounds?\s+\d+\b|\b(this|that|last|next|previous|earlier|later)\s+round\b|"
                        rf"\b({ORDINAL})\s+round\b", re.I),
    "eval set": re.compile(rf"\b({ORDINAL}|{SET_NAMES})_(qa|test|tune)\b|\b({SET_NAMES})\s+(tuning|test)\b", re.I),
}
# A double-quoted or backticked example, blanked out (newlines kept) so that line numbers stay right.
QUOTED = re.compile(r'"[^"\n]*"|`[^`\n]*`')



def texts(source: str) -> list[tuple[int, str]]:
    """(first line, text) of every comment and docstring in a Python source."""
    out = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
           if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.append((first.value.lineno, first.value.value))
    return out


def findings(source: str) -> list[tuple[int, str, str]]:
    """(line, rule, matched text) for each date, round or eval-set name in the comments and docstrings."""
    out = []
    for line, text in texts(source):
        bare = QUOTED.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)
        for rule, pattern in RULES.items():
            for m in pattern.finditer(bare):
                out.append((line + bare.count("\n", 0, m.start()), rule, m[0]))
    return sorted(out)


def library_findings() -> dict[str, list[tuple[int, str, str]]]:
    found = {}
    for path in sorted((ROOT / "qa_bot").rglob("*.py")):
        if hits := findings(path.read_text(encoding="utf-8")):
            found[path.relative_to(ROOT).as_posix()] = hits
    return found


def test_dates_rounds_and_set_names_are_found_in_comments_and_docstrings():
    source = '''"""Module.

Unprimed, question 1 took 7.0 s (measured 2026-11-26).
"""
x = "2026-11-26 round 3 eighth_test"  # the fix of round 25; news tuning n27 answered it


def f():
    """Fit on the tuning halves (eval/README.md, tenth round); this round too; see eighth_test."""
    # a heading ("version 1.33 - 2021-01-07") and `since="2023-01-01"` are quoted examples, not dates
'''
    assert findings(source) == [(3, "date", "2026-11-26"), (5, "eval set", "news tuning"), (5, "round", "round 25"),
                                (9, "eval set", "eighth_test"), (9, "round", "tenth round"),
                                (9, "round", "this round")]


def test_no_comment_or_docstring_in_the_library_is_dated():
    found = library_findings()
    assert not found, "dated comments (say why instead; figures go to eval/journal/ or docs/performance.md):\n" + \
        "\n".join(f"{f}:{line}: {rule}: {text}" for f, hits in found.items() for line, rule, text in hits)
