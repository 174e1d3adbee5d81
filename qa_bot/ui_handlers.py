"""The chat's event handlers and per-session state: the questions of the browser chat (a Conversation a
session) and of the /ask and /chat endpoints, opening sources, adding and removing a session's documents, and
votes on answers. Plain functions and methods, so they can be tested without a server.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # set before gradio is imported: no telemetry calls

import itertools
import logging
from typing import Any

import gradio as gr

from . import REFUSAL
from .chat import DONE, ERROR, MAX_QUEUED, Conversation, Turn, citation_item, shown_source
from .errors import InvalidQuestion, QABotError
from .question import QuestionTooLong, normalise, sentence
from .sanitize import visible
from .types import Answer, Stage
from .ui_render import (EMPTY_DOC, esc, render_chat, render_counter, render_document, render_error, render_message,
                        render_sources, source_items, stage_label)
from .web import UploadStore

log = logging.getLogger(__name__)


# --- the corpus header and this session's added documents ---------------------------------------------


def corpus_titles(bot) -> list[str]:
    """The corpus's document titles (the file name when a document has none), as the library gives them."""
    try:
        docs = list(getattr(bot, "documents", None) or getattr(bot, "_corpus", {}) or ())
        titles = getattr(bot, "titles", {}) or {}
    except QABotError:  # an unreadable corpus: the first question will say so
        return []
    return [titles.get(src) or src for src in sorted(docs)]


def bot_documents(bot, session) -> list[str]:
    """The names of the documents added in this browser session."""
    return bot.session_documents(session) if callable(getattr(bot, "session_documents", None)) else []


def added_documents(bot, session):
    """The dropdown of this session's added documents and its Remove button (hidden while there are none)."""
    names = bot.session_documents(session) if callable(getattr(bot, "session_documents", None)) else []
    return gr.update(choices=names, value=names[-1] if names else None, visible=bool(names)), \
        gr.update(visible=bool(names))


def remove_added(bot, session, name):
    """Drop one added document from this session; the note says what happened."""
    if not name:
        return gr.skip(), render_error("Choose a document to remove."), gr.skip(), gr.skip()
    try:
        session = bot.remove_document(session, name)
    except QABotError as e:
        return gr.skip(), render_error(str(e)), gr.skip(), gr.skip()
    return session, f'<div class="qa-note">Removed <b>{esc(name)}</b>; answers no longer use it.</div>', \
        *added_documents(bot, session)


# --- votes on answers ----------------------------------------------------------------------------------


def last_answered(conv: Conversation | None) -> Turn | None:
    """The chat's last answered turn (what the Helpful / Not helpful buttons rate)."""
    done = [t for t in (conv.snapshot() if conv is not None else []) if t.status == DONE]
    return done[-1] if done else None


def voted_turn(conv: Conversation | None, index: Any) -> Turn | None:
    """The turn whose answer bubble is message `index` of the Chatbot (render_chat: two messages a turn), when
    it is answered: a thumb on any answer, old ones too, rates that answer."""
    i = index[0] if isinstance(index, (list, tuple)) and index else index
    turns = conv.snapshot() if conv is not None else []
    if not isinstance(i, int) or i < 0 or i // 2 >= len(turns) or i % 2 != 1:
        return None
    turn = turns[i // 2]
    return turn if turn.status == DONE else None


def record_feedback(store, bot, vote: str, comment: str, turn: Turn | None) -> tuple[str, Any]:
    """Store a vote on one answered turn (its question, text, citations, the model) and say so; a store that
    cannot be written gives a one-line message and the comment stays in its box."""
    from .feedback import Feedback, FeedbackError

    if turn is None:
        return render_error("Ask a question first; then rate its answer."), gr.skip()
    question, answer = turn.question, turn.text
    cites = tuple({k: it[k] for k in ("n", "source", "start", "end", "text")} for it in turn.items if it.get("cited"))
    try:
        info = bot.model_info() if callable(getattr(bot, "model_info", None)) else {}
    except Exception:  # the vote matters more than the model's description
        info = {}
    try:
        store.add(Feedback(vote, question, answer, cites, comment or "", info))
    except FeedbackError as e:
        log.warning("feedback not saved: %s", e)
        return render_error(f"Your feedback was not saved: {e}"), gr.skip()  # the comment stays in its box
    kind = "helpful" if vote == "up" else "not helpful"
    return f'<div class="qa-note">Thanks: your vote ({kind}) on the answer to “{esc(question[:80])}” was saved.</div>', ""


# --- the handlers ---------------------------------------------------------------------------------------


def check_ask_inputs(question: Any, history: Any) -> tuple[str, list[tuple[str, str]]]:
    """The /ask endpoint's inputs, their shapes checked: a malformed call gets a message saying what is wrong.
    What the question and history say is question.normalise's to check, as for every face."""
    if not isinstance(question, str):
        raise gr.Error(f"/ask: question must be a string, not {type(question).__name__}.")
    if history is None:
        return question, []
    shape = 'history must be a list of [question, answer] pairs of strings, e.g. [["Who is the CEO?", "…"]]'
    if not isinstance(history, (list, tuple)):
        raise gr.Error(f"/ask: {shape}; got {type(history).__name__}.")
    pairs = []
    for i, turn in enumerate(history):
        if not (isinstance(turn, (list, tuple)) and len(turn) == 2 and all(isinstance(t, str) for t in turn)):
            raise gr.Error(f"/ask: {shape}; item {i} is not.")
        pairs.append((turn[0], turn[1]))
    return question, pairs


def check_filter_inputs(**fields: Any) -> dict[str, str]:
    """The /ask endpoint's filter inputs: strings or null, the empty ones dropped (the bot checks the values)."""
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise gr.Error(f"/ask: {name} must be a string, not {type(value).__name__}.")
    return {name: value for name, value in fields.items() if value and value.strip()}


class Handlers:
    """The app's event handlers, around one bot and the upload store (plain methods, so they can be tested
    without a server; Gradio reads their signatures for gr.EventData and gr.Progress)."""

    def __init__(self, bot, uploads: UploadStore | None = None):
        self.bot, self.uploads = bot, uploads
        self._picks = itertools.count()  # numbers each document selection (render_document's pick)
        # A refusal lists only passages near the question: the bot's own bar (source_items)
        self._near = getattr(getattr(bot, "settings", None), "min_similarity", None)

    def doc_for(self, items, session, idx: int) -> str:
        it = items[idx]
        try:
            text = self.bot.document_text(it["source"], session)
        except Exception:  # a stale click (e.g. after Clear) must not break the page
            log.exception("cannot open %s", it.get("source"))
            return render_error(f"Cannot open {it['source']}.")
        label = f"[{it['n']}]" if it.get("cited") else ""
        return render_document(text, [(it["start"], it["end"])], title=visible(shown_source(it["source"])), label=label,
                               pick=next(self._picks))

    def respond(self, question, chat, turns, session):
        """The /chat API (stateless: the caller passes its chat and turns): one question answered by the
        browser chat's own path (`run`) in a throwaway Conversation holding `turns` as its history."""
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        turns = [tuple(t) for t in turns or []]
        conv = Conversation(Turn(i, q, DONE, a) for i, (q, a) in enumerate(turns))
        mine = conv.enqueue(question)
        before = list(chat or [])
        yield "", before + render_chat([mine]), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        for _, items, sources, doc, _saved in self.run(conv, session):
            done = conv.turn(mine.id)
            assert done is not None  # nothing removes a turn from this throwaway conversation
            new_turns = turns + [(question, done.text)] if done.status == DONE else gr.skip()
            yield (gr.skip(), before + render_chat([done]), new_turns, items, sources, doc)

    def show_source(self, items, session, evt: gr.EventData):
        idx = _event_int(evt, "idx")
        if idx is None:
            return gr.skip()
        return self.doc_for(items, session, idx) if 0 <= idx < len(items or []) else gr.skip()

    def add_document(self, file, session, progress=gr.Progress()):
        """Add an uploaded file to this session. `file` is the upload's FileData (the event skips Gradio's
        preprocessing, which would leave an empty temp file behind per upload); only a path the upload store
        handed out is read, once, and then deleted."""
        path = file.get("path") if isinstance(file, dict) else None
        if not path:
            return gr.skip(), gr.skip()
        try:
            if self.uploads is None:
                raise QABotError("Adding documents is not enabled on this server.")
            name, data = self.uploads.take(path)
            progress(0, desc=f"Reading {name}")
            session = self.bot.add_document(
                session, name, data, progress=lambda done, total: progress((done, total), desc=f"Embedding {name}",
                                                                           unit="passages"))
        except QABotError as e:  # the library's own message, e.g. the upload policy's
            return gr.skip(), render_error(str(e))
        except Exception:
            log.exception("adding an upload failed")
            return gr.skip(), render_error("Could not add that document.")
        return session, (f'<div class="qa-note">Added <b>{esc(name)}</b>. Only this browser session can see it.'
                         "</div>")

    def ask(self, question: str, history: list[list[str]] | None = None, source: str | None = None,
            since: str | None = None, until: str | None = None) -> dict:
        """Answer a question about the article. history (optional): [[question, answer], ...], oldest first,
        for follow-ups. source/since/until (optional): only the documents this filter lets through (a file name,
        glob, publisher or site host; YYYY-MM-DD, inclusive). Returns the answer (text, abstained, citations,
        retrieved, timings, standalone_question)."""
        question, pairs = check_ask_inputs(question, history)
        flt = check_filter_inputs(source=source, since=since, until=until)
        try:
            question, cleaned = normalise(question, pairs, getattr(self.bot, "settings", None))
            answer = self.bot.ask(question, history=cleaned, **flt)
        except QABotError as e:
            raise gr.Error(str(e)) from None
        except Exception:
            log.exception("answering %r through /ask failed", question)
            raise gr.Error("Something went wrong; please try again.") from None
        out = answer.to_dict()
        out.pop("draft", None)  # unverified model text never leaves the server
        return {"answer": answer.text, **out}

    @staticmethod
    def clear():
        return [], [], [], render_sources([]), EMPTY_DOC, ""

    # --- the browser chat: one Conversation per session (qa_bot.chat) ------------------------------------
    def submit(self, question, conv: Conversation):
        """Add a question to the conversation (queued if an answer is being written); clears the box and the
        note under it. Runs outside the queue, so it is never held up by the answer it waits behind. A question
        the library would refuse as it is (too long, no words) is not sent: it stays in the box, and the note
        under the box says why (outputs: box, chat, note)."""
        question = (question or "").strip()
        if not question:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            normalise(question, None, getattr(self.bot, "settings", None))
        except InvalidQuestion as e:  # the library's words; only an over-long question needs advice on what to do
            note = sentence(e)
            if isinstance(e, QuestionTooLong):
                note = f"{note[:-1]}: shorten it and send it again."
            return gr.skip(), gr.skip(), render_counter(note)
        if conv.queued() >= MAX_QUEUED:  # the question stays in the box, to send once one is answered
            gr.Warning(f"{MAX_QUEUED} questions are already waiting; send this one when one is answered.")
            return gr.skip(), gr.skip(), gr.skip()
        conv.enqueue(question)
        return "", render_chat(conv.snapshot()), render_counter()

    def run(self, conv: Conversation, session, source: str = "", since: str = "", until: str = ""):
        """Answer the queued questions in order, streaming each (outputs: chat, items, sources, doc, saved),
        from the documents the filter lets through (the library's: source name, glob or publisher; since/until
        yyyy-mm-dd; a filter that matches nothing is the answer's one-line error). The loop stops when its turn
        stops being RUNNING (Stop, reset); closing this generator (Gradio's cancel) closes the bot's answer
        stream, so the model is freed either way."""
        flt = {k: v.strip() for k, v in (("source", source), ("since", since), ("until", until))
               if isinstance(v, str) and v.strip()}
        started = False
        while (turn := conv.start_next()) is not None:
            started = True
            yield render_chat(conv.snapshot()), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            answer = yield from self._run_turn(conv, turn, session, flt)
            if answer is None:
                yield render_chat(conv.snapshot()), gr.skip(), gr.skip(), gr.skip(), conv.to_json()
                continue
            items = source_items(answer, self._near)
            doc = self.doc_for(items, session, 0) if answer.citations else EMPTY_DOC
            refusal = answer.text if answer.abstained else REFUSAL
            yield (render_chat(conv.snapshot()), items, render_sources(items, answer.abstained, refusal), doc,
                   conv.to_json())
        if not started:
            # Nothing was waiting: an earlier answering event took this event's question along with its own (a
            # question sent mid-answer joins the running queue). A generator that yields nothing would set every
            # output to nothing: the chat, Sources and the document would go blank.
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()

    def _run_turn(self, conv: Conversation, turn: Turn, session, flt: dict | None = None):
        stream, text = None, ""
        try:
            stream = self.bot.ask_stream(turn.question, history=conv.history(before=turn.id), session=session,
                                         **(flt or {}))
            for piece in stream.events():
                if not conv.is_running(turn.id):
                    return None  # stopped or reset: the finally closes the stream
                if isinstance(piece, Stage):
                    conv.update(turn.id, stage=stage_label(piece))
                    yield render_chat(conv.snapshot()), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                    continue
                if isinstance(piece, Answer):
                    items = source_items(piece, self._near)
                    done = conv.update(turn.id, status=DONE, text=piece.text, stage="", abstained=piece.abstained,
                                       items=tuple(items), html=render_message(piece, turn.id, items),
                                       searched=piece.standalone_question or "")
                    for _ in stream:  # the Answer is the last item: let the bot's generator finish normally
                        pass
                    return piece if done else None
                text += piece
                conv.update(turn.id, text=text, stage="")
                yield render_chat(conv.snapshot()), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            raise QABotError("The answer was cut off; please try again.")
        except QABotError as e:  # user-facing message; never a traceback
            conv.update(turn.id, status=ERROR, text=str(e))
        except Exception:
            log.exception("answering %r failed", turn.question)
            conv.update(turn.id, status=ERROR, text="Something went wrong; please try again.")
        finally:
            if stream is not None:
                stream.close()
        return None

    @staticmethod
    def stop(conv: Conversation):
        """Stop: the answer being written ends where it is, queued questions are dropped (both shown)."""
        conv.stop()
        return render_chat(conv.snapshot()), conv.to_json()

    @staticmethod
    def reset(conv: Conversation | None = None):
        """The one reset (chat trash icon, Clear chat, New chat): a new empty conversation, so no bubbles,
        sources, highlighted document or follow-up memory; an answer being written is stopped."""
        if conv is not None:
            conv.stop()
        return Conversation(), [], [], render_sources([]), EMPTY_DOC, "", []

    @staticmethod
    def regenerate(conv: Conversation):
        """Ask the last question again, replacing its answer (nothing while an answer is being written)."""
        question = conv.take_last_question()
        if question is None:
            return gr.skip()
        conv.enqueue(question)
        return render_chat(conv.snapshot())

    def show_citation(self, conv: Conversation, session, evt: gr.EventData):
        """A click on an answer's [n] (any answer, not only the latest): that answer's cited sentence."""
        turn_id, n = _event_int(evt, "turn"), _event_int(evt, "n")
        if turn_id is None or n is None:
            return gr.skip()
        item = citation_item(conv.turn(turn_id), n)
        return gr.skip() if item is None else self.doc_for([item], session, 0)

    @staticmethod
    def restore(saved, conv: Conversation):
        """The chat this browser kept (localStorage), put before any question already sent on this page, with
        the latest answer's sources listed when nothing newer is showing."""
        fresh = not conv.snapshot()
        if not conv.restore(Conversation.from_json(saved).snapshot()):
            return gr.skip(), gr.skip(), gr.skip()
        if not fresh:
            return render_chat(conv.snapshot()), gr.skip(), gr.skip()
        last = next((t for t in reversed(conv.snapshot()) if t.status == DONE), None)
        items = list(last.items) if last else []
        refusal = last.text if last and last.abstained else REFUSAL
        return render_chat(conv.snapshot()), items, render_sources(items, bool(last and last.abstained), refusal)


def _event_int(evt: gr.EventData, key: str) -> int | None:
    """The whole number the browser sent under `key` with the event; None when it sent none or not a number."""
    value = (getattr(evt, "_data", None) or {}).get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
