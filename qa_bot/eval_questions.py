"""Eval inputs: read and validate a question file, and find where each question's evidence lies in the corpus.

Question file: one JSON object per line with id, question, answers (aliases), answerable, and optionally evidence
(a verbatim span of a corpus file; null or absent when unknown) and source (the corpus file holding the evidence).
See docs/question_format.md. A file that is missing or not in the format raises QuestionFileError (CLI exit code 2).
Evidence span: see the metric definitions in qa_bot.eval_score.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import InvalidQuestion, QuestionFileError
from .eval_score import loose_text
from .question import clean_question
from .settings import Settings

REQUIRED_FIELDS = ("id", "question", "answers", "answerable")
OPTIONAL_FIELDS = ("evidence", "source")  # absent = null

# ---------------------------------------------------------------- question file


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a question file (docs/question_format.md); raise QuestionFileError naming the line of
    the first problem. Each question comes back with every field of the format (absent optional ones as None)
    and its line number."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read forever
        raise QuestionFileError(f"question file {path} is not a regular file")
    try:
        raw = path.read_text(encoding="utf-8-sig")  # -sig: tolerate a BOM from Windows editors
    except FileNotFoundError:
        raise QuestionFileError(f"question file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"cannot read question file {path}: {exc}") from None
    questions, seen = [], set()
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: invalid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; arrays nested 100,000 deep
            raise QuestionFileError(f"{where}: unusable JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
        if not isinstance(obj, dict):
            raise QuestionFileError(f"{where}: expected a JSON object")
        missing = [f for f in REQUIRED_FIELDS if f not in obj]
        if missing:
            raise QuestionFileError(f"{where}: missing field(s) {', '.join(missing)}")
        qid, question, answers, answerable = (obj[f] for f in REQUIRED_FIELDS)
        evidence, source = (obj.get(f) for f in OPTIONAL_FIELDS)
        if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
            raise QuestionFileError(f"{where}: 'id' must be a non-empty string")
        if str(qid) in seen:
            raise QuestionFileError(f"{where}: duplicate id {qid!r}")
        if not isinstance(question, str) or not question.strip():
            raise QuestionFileError(f"{where}: 'question' must be a non-empty string")
        try:  # the checks every question passes in QABot.ask, here rather than as an error per question
            clean_question(question, Settings.max_question_chars, "'question'")
        except InvalidQuestion as exc:
            raise QuestionFileError(f"{where}: {exc}") from None
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise QuestionFileError(f"{where}: 'answers' must be a list of strings")
        if not isinstance(answerable, bool):
            raise QuestionFileError(f"{where}: 'answerable' must be true or false")
        if answerable and not any(a.strip() for a in answers):
            raise QuestionFileError(f"{where}: an answerable question needs at least one answer")
        if evidence is not None and (not isinstance(evidence, str) or not evidence.strip()):
            raise QuestionFileError(f"{where}: 'evidence' must be a non-empty string or null")
        if source is not None:
            if not isinstance(source, str) or not source.strip():
                raise QuestionFileError(f"{where}: 'source' must be a non-empty string (a path relative to the "
                                        f"corpus folder) or null")
            source = PurePosixPath(source.strip().replace("\\", "/")).as_posix()  # "./a.txt" -> "a.txt"
        seen.add(str(qid))
        questions.append({"id": str(qid), "question": question, "answers": answers, "answerable": answerable,
                          "evidence": evidence, "source": source, "line": lineno})
    if not questions:
        raise QuestionFileError(f"question file {path} holds no questions")
    return questions


# ---------------------------------------------------------------- evidence location


def read_corpus(corpus_dir: str | Path, max_bytes: int | None = None) -> dict[str, str]:
    """{posix path relative to corpus_dir: text} for every usable document under corpus_dir (its extracted text).

    Reuses the ingest stage's reader so offsets agree with the chunker's (raw UTF-8, no newline translation)."""
    from .ingest import load_corpus
    from .settings import Settings

    docs, _ = load_corpus(Path(corpus_dir), max_bytes or Settings.from_env().max_file_bytes)
    return {d.source: d.text for d in docs}


def check_sources(questions: list[dict[str, Any]], corpus: dict[str, str], questions_path: str | Path,
                  corpus_dir: str | Path) -> None:
    """Raise QuestionFileError naming the line of the first question whose `source` is not a corpus file."""
    for q in questions:
        if q.get("source") is not None and q["source"] not in corpus:
            raise QuestionFileError(f"{questions_path}, line {q['line']}: source {q['source']!r} is not a usable "
                                    f"document of the corpus folder {corpus_dir}")


def locate_evidence(evidence: str | None, corpus: dict[str, str],
                    source: str | None = None) -> tuple[str, int, int] | None:
    """(source, start, end) of the first occurrence of `evidence`, files in sorted order, or only in the file
    `source` when one is given; exact search first, then a whitespace/quote/case-insensitive one mapped back to
    original offsets (also of the evidence with a Markdown or reStructuredText file's markup removed); None
    when not found (or `source` is not in the corpus)."""
    if not evidence:
        return None
    if source is not None:
        corpus = {source: corpus[source]} if source in corpus else {}
    for source, text in corpus.items():
        i = text.find(evidence)
        if i >= 0:
            return source, i, i + len(evidence)
    from .formats_markup import markup_text

    plain = loose_text(evidence)[0].strip()
    # Evidence copied from a Markdown or reStructuredText file holds its markup ("``pyparsing``", a heading's
    # underline, "[CVE-…](url)"); the document is its readable text, so the evidence is made readable alike
    # (once per kind of file, not per file).
    readable: dict[str, str] = {}
    for source, text in corpus.items():
        kind = Path(source).suffix.lower()
        if kind not in readable:
            marked = markup_text(source, evidence)
            readable[kind] = loose_text(marked[0])[0].strip() if marked else plain
        hay, offsets = loose_text(text)
        for needle in dict.fromkeys((plain, readable[kind])):
            i = hay.find(needle) if needle else -1
            if i >= 0:
                return source, offsets[i], offsets[i + len(needle) - 1] + 1
    return None
