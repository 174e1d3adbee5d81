"""One browser chat's conversation: its turns (question, status, answer, sources), the queue of questions
waiting for the model, and the plain-text copy of an answer. Pure data and rules, no Gradio.

A `Conversation` is the one mutable object of a chat session (held in a gr.State): the question box adds
turns to it while an answer is being written, and the answering event, the Stop button and a reset all read
and change the same object under its lock, so a question sent mid-answer is queued, never lost.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

QUEUED, RUNNING, DONE, ERROR, STOPPED = "queued", "running", "done", "error", "stopped"
SEARCHING = "Searching the documents…"  # a started answer's first stage (later ones come from the bot)
MAX_QUEUED = 3  # questions a chat may have waiting: its queue is drained in one go, so others would wait behind it
# A rewritten follow-up is remembered as searched for up to this length (a reader's rewrite is at most 300
# characters, followup.MAX_REWRITE_CHARS); the rule's "(following up on: ...)" form would nest and grow.
REMEMBERED_REWRITE_CHARS = 300
ADDED_PREFIX = "session/"  # pipeline.SESSION_PREFIX: how the library names a document added in a chat
SAVED_TURNS = 50  # turns kept in the browser's history (localStorage is small; older turns are dropped)


@dataclass(frozen=True)
class Turn:
    id: int
    question: str
    status: str = QUEUED
    text: str = ""  # the verified answer text so far (final when DONE), or the error message (ERROR)
    stage: str = ""  # what the reader is doing while RUNNING with no text yet
    html: str = ""  # the finished assistant bubble (DONE)
    items: tuple[dict[str, Any], ...] = ()  # the passages listed under the answer (ui.source_items)
    abstained: bool = False
    searched: str = ""  # the follow-up rewritten to stand alone, when it was (Answer.standalone_question)
    vote: str = ""  # "up" or "down" once this answer's thumb was stored (its confirmation is shown under it)

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"items": [dict(it) for it in self.items]}

    @classmethod
    def from_json(cls, data: dict) -> "Turn":
        fields = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in fields}
        turn = cls(**known | {"items": tuple(dict(it) for it in known.get("items") or ())})
        # An answer cut short by a reload is not resumed: it is shown as stopped.
        return turn if turn.status in (DONE, ERROR, STOPPED) else dataclasses.replace(turn, status=STOPPED)


class Conversation:
    """The turns of one chat, oldest first. Every method takes the lock: the answering event (a worker
    thread) and the question box / Stop / reset handlers run concurrently."""

    def __init__(self, turns: Iterable[Turn] = ()):
        self.turns: list[Turn] = list(turns)
        self._lock = threading.Lock()
        self._next_id = max((t.id for t in self.turns), default=-1) + 1

    def __deepcopy__(self, memo):  # gr.State deep-copies its initial value per session: a fresh, empty chat
        return Conversation([])

    # --- changes -------------------------------------------------------------------------------------
    def enqueue(self, question: str) -> Turn:
        with self._lock:
            # Ids grow with the clock (µs), so the turns of a chat restored from the browser never share an id
            # with ones asked since the page loaded; answers' [n] markers name their turn by id.
            turn = Turn(max(self._next_id, time.time_ns() // 1000), question)
            self._next_id = turn.id + 1
            self.turns.append(turn)
            return turn

    def start_next(self) -> Turn | None:
        """The oldest queued turn, now RUNNING; None when nothing waits (or another turn is running)."""
        with self._lock:
            if any(t.status == RUNNING for t in self.turns):
                return None
            for i, t in enumerate(self.turns):
                if t.status == QUEUED:
                    self.turns[i] = dataclasses.replace(t, status=RUNNING, stage=SEARCHING)
                    return self.turns[i]
            return None

    def update(self, turn_id: int, *, only_if_running: bool = True, **changes) -> bool:
        """Change a turn; False (and no change) when it is gone or, by default, no longer RUNNING (stopped)."""
        with self._lock:
            for i, t in enumerate(self.turns):
                if t.id == turn_id:
                    if only_if_running and t.status != RUNNING:
                        return False
                    self.turns[i] = dataclasses.replace(t, **changes)
                    return True
            return False

    def stop(self) -> None:
        """Stop the answer being written and drop the queued questions (both shown as stopped)."""
        with self._lock:
            self.turns = [dataclasses.replace(t, status=STOPPED) if t.status in (QUEUED, RUNNING) else t
                          for t in self.turns]

    def restore(self, saved: Iterable[Turn]) -> bool:
        """Put the turns kept by the browser before this chat's own (a question may have been sent before
        the page's restore arrived); False when there was nothing to add."""
        with self._lock:
            have = {t.id for t in self.turns}
            older = [t for t in saved if t.id not in have]
            self.turns = older + self.turns
            self._next_id = max([self._next_id] + [t.id + 1 for t in older])
            return bool(older)

    def set_vote(self, turn_id: int, vote: str) -> bool:
        """Record that an answered turn's vote was stored (its bubble then says so); False for any other turn."""
        with self._lock:
            for i, t in enumerate(self.turns):
                if t.id == turn_id and t.status == DONE:
                    self.turns[i] = dataclasses.replace(t, vote=vote)
                    return True
            return False

    def take_last_question(self) -> str | None:
        """For Regenerate: remove the last finished turn and return its question (None while answering)."""
        with self._lock:
            if not self.turns or any(t.status in (QUEUED, RUNNING) for t in self.turns):
                return None
            return self.turns.pop().question

    # --- reads ---------------------------------------------------------------------------------------
    def is_running(self, turn_id: int) -> bool:
        with self._lock:
            return any(t.id == turn_id and t.status == RUNNING for t in self.turns)

    def queued(self) -> int:
        with self._lock:
            return sum(t.status == QUEUED for t in self.turns)

    def busy(self) -> bool:
        with self._lock:
            return any(t.status in (QUEUED, RUNNING) for t in self.turns)

    def snapshot(self) -> list[Turn]:
        with self._lock:
            return list(self.turns)

    def turn(self, turn_id: int) -> Turn | None:
        with self._lock:
            return next((t for t in self.turns if t.id == turn_id), None)

    def history(self, before: int | None = None) -> list[tuple[str, str]]:
        """(question, answer text) of the answered turns before turn `before`: the follow-up memory. A follow-up
        that was rewritten is remembered as it was searched for, so a follow-up on it finds its subject named."""
        with self._lock:
            out = []
            for t in self.turns:
                if t.id == before:
                    break
                if t.status == DONE:  # a rewrite longer than a reader's (the rule's, carried over again) is not
                    out.append((t.searched if 0 < len(t.searched) <= REMEMBERED_REWRITE_CHARS else t.question, t.text))
            return out

    def to_json(self) -> list[dict]:
        """What the browser keeps (localStorage): the last SAVED_TURNS turns."""
        return [t.to_json() for t in self.snapshot()[-SAVED_TURNS:]]

    @classmethod
    def from_json(cls, data: Any) -> "Conversation":
        """A conversation from the browser's copy; anything unreadable gives an empty chat, never an error."""
        turns = []
        for item in data if isinstance(data, list) else []:
            try:
                turns.append(Turn.from_json(item))
            except (TypeError, ValueError, AttributeError):
                continue
        return cls(turns)


def shown_source(source: str) -> str:
    """A source as people know it: a document added in this chat by its file name, "(added)" after it, not the
    library's internal "session/" name."""
    return f"{source.removeprefix(ADDED_PREFIX)} (added)" if source.startswith(ADDED_PREFIX) else source


def citation_item(turn: Turn | None, n: int) -> dict[str, Any] | None:
    """The cited passage [n] of an answer (None when that answer has no citation n)."""
    if turn is None:
        return None
    return next((it for it in turn.items if it.get("cited") and it.get("n") == n), None)


def copy_text(turn: Turn) -> str:
    """An answer as plain text with its sources: the answer, then each cited sentence with its document."""
    cited = [it for it in turn.items if it.get("cited")]
    if not cited:
        return turn.text
    lines = [turn.text, "", "Sources:"]
    lines += [f"[{it['n']}] “{it['text'].strip()}” ({shown_source(it['source'])})" for it in cited]
    return "\n".join(lines)
