"""The Gradio chat: streamed answers, numbered sources, and the cited span highlighted in the full text.

Rendering helpers are pure functions (text in, HTML out) so escaping can be unit-tested without a browser.
Every piece of document, answer or user text passes through `esc` before it becomes HTML.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # set before gradio is imported: no telemetry calls

import contextlib
import html
import logging
import re
from typing import Any, Sequence

import gradio as gr

from . import REFUSAL
from .errors import QABotError
from .ingest import DOC_SUFFIXES
from .settings import REPO_ROOT, Settings
from .theme import CSS, RESTORE_JS, TOGGLE_JS
from .types import Answer
from .web import UPLOAD_PATH, RequestGuard, UploadStore, upload_route

log = logging.getLogger(__name__)

EXAMPLES = [  # each stands alone (a first question cannot be a follow-up); the last is not in the article
    "When did Alibaba go public in New York?",
    "What is Alibaba doing with its cloud unit?",
    "How much revenue did the cloud business generate in the first quarter?",
    "Who is the chairman and chief executive officer of Alibaba Group?",
    "What is Alibaba's share price today?",  # not in the article: shows a refusal
]
MODEL = "model"  # concurrency group of every event that touches the models (llama.cpp is not thread-safe)
UPLOADS = "uploads"  # concurrency group of adding documents: slow, and kept out of the answers' way

# ---------------------------------------------------------------------------------------------------
# Pure rendering helpers
# ---------------------------------------------------------------------------------------------------


def esc(text: str) -> str:
    """HTML-escape, and also neutralise `{ } $` so gr.HTML's template engine cannot interpret document text."""
    return (html.escape(str(text), quote=True)
            .replace("{", "&#123;").replace("}", "&#125;").replace("$", "&#36;"))


def format_ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return "<1 ms" if 0 < seconds < 0.0005 else f"{seconds * 1000:.0f} ms"


def format_timings(timings: dict[str, float]) -> str:
    """'retrieval 12 ms · generation 340 ms' (plus rewrite when a follow-up was rewritten). A stage that did
    not run (absent, or 0: a refusal made before the reader) is not shown."""
    names = (("rewrite", "rewrite"), ("retrieve", "retrieval"), ("generate", "generation"))
    return " · ".join(f"{label} {format_ms(timings[k])}" for k, label in names if timings.get(k, 0) > 0)


def render_answer_text(text: str) -> str:
    """Escaped answer text with [n] markers turned into citation badges."""
    body = esc(text).replace("\n", "<br>")
    return re.sub(r"\[(\d+)\]", r'<sup class="qa-cite" data-n="\1">[\1]</sup>', body)


def render_message(answer: Answer) -> str:
    """The assistant chat bubble for a finished answer; a refusal gets its own look."""
    if answer.abstained:
        body = (f'<div class="qa-msg qa-refusal"><span class="qa-badge">No answer</span> '
                f"{esc(answer.text or REFUSAL)}</div>")
    else:
        body = f'<div class="qa-msg qa-answer">{render_answer_text(answer.text)}</div>'
    meta = []
    if answer.standalone_question and answer.standalone_question.strip() != answer.question.strip():
        meta.append(f'<span class="qa-rewrite">searched for: “{esc(answer.standalone_question)}”</span>')
    timings = {k: v for k, v in answer.timings.items() if k != "rewrite" or answer.standalone_question}
    if timings:
        meta.append(f'<span class="qa-timings">{esc(format_timings(timings))}</span>')
    return body + (f'<div class="qa-meta">{" · ".join(meta)}</div>' if meta else "")


def render_streaming(text: str) -> str:
    return f'<div class="qa-msg qa-answer qa-streaming">{render_answer_text(text)}<span class="qa-cursor">▌</span></div>'


def render_error(message: str) -> str:
    return f'<div class="qa-msg qa-error">⚠ {esc(message)}</div>'


def render_user(question: str) -> str:
    return f'<div class="qa-msg qa-user">{esc(question)}</div>'


def source_items(answer: Answer, min_similarity: float | None = None) -> list[dict[str, Any]]:
    """The passages to list under an answer: its citations, or, for a refusal, the closest retrieved passages
    that are relevant. Relevant (with min_similarity given): the passage holds a sentence the reader was shown
    whose cosine to the question reaches min_similarity, the bot's own bar for "near the question" (below it,
    QABot refuses without reading); passages that only share ranking position with a poem request or an
    injection attempt are not listed. Evidence without a similarity (another Bot) leaves the list as it is."""
    if answer.citations:
        return [{"n": c.n, "source": c.source, "start": c.start, "end": c.end, "text": c.text, "cited": True}
                for c in answer.citations]
    hits = list(answer.retrieved)
    sims = [(e, getattr(e, "similarity", None)) for e in answer.evidence]
    if min_similarity is not None and sims and all(v is not None for _, v in sims):
        near = [e for e, v in sims if v >= min_similarity]
        hits = [h for h in hits if any(e.source == h.chunk.source and h.chunk.start <= e.start < h.chunk.end
                                       for e in near)]
    return [{"n": i, "source": h.chunk.source, "start": h.chunk.start, "end": h.chunk.end, "text": h.chunk.text,
             "cited": False} for i, h in enumerate(hits, 1)]


def render_sources(items: Sequence[dict[str, Any]], abstained: bool = False, refusal: str = REFUSAL) -> str:
    """Numbered passages as buttons (data-idx is the position in `items`; the click handler reads it)."""
    if not items:
        note = "No passages were found." if abstained else "Sources appear here after an answer."
        return f'<div class="qa-sources qa-empty">{esc(note)}</div>'
    head = f"{refusal} Closest passages:" if abstained else "Sources"
    rows = []
    for i, it in enumerate(items):
        label = f"[{it['n']}]" if it.get("cited") else f"{it['n']}."
        rows.append(
            f'<li><button type="button" class="qa-src" data-idx="{i}" title="Show in the full text">'
            f'<span class="qa-n">{esc(label)}</span> <span class="qa-name">{esc(it["source"])}</span>'
            f'<span class="qa-passage">{esc(it["text"])}</span></button></li>')
    kind = "qa-closest" if abstained else "qa-cited"
    return f'<div class="qa-sources {kind}"><div class="qa-head">{esc(head)}</div><ol>{"".join(rows)}</ol></div>'


def render_document(text: str, spans: Sequence[tuple[int, int]], *, title: str = "", focus: int = 0,
                    label: str = "") -> str:
    """The whole document, escaped, with each span wrapped in <mark>; spans[focus] gets class qa-focus
    (the viewer scrolls it into view). Spans are clipped to the text; overlapping ones are merged."""
    clean = sorted({(max(0, s), min(len(text), e), i == focus) for i, (s, e) in enumerate(spans)
                    if min(len(text), e) > max(0, s)})
    merged: list[list[Any]] = []
    for s, e, f in clean:
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
            merged[-1][2] = merged[-1][2] or f
        else:
            merged.append([s, e, f])
    out, pos = [], 0
    for s, e, f in merged:
        cls = "qa-hl qa-focus" if f else "qa-hl"
        tag = f'<span class="qa-mark-label">{esc(label)}</span>' if f and label else ""
        out.append(f'{esc(text[pos:s])}<mark class="{cls}">{tag}{esc(text[s:e])}</mark>')
        pos = e
    out.append(esc(text[pos:]))
    head = f'<div class="qa-doc-title">{esc(title)}</div>' if title else ""
    return f'<div class="qa-doc">{head}<div class="qa-doc-body" tabindex="0" role="region" aria-label="Document text">{"".join(out)}</div></div>'


EMPTY_DOC = '<div class="qa-doc qa-empty">Select a source to read it in context.</div>'

# Client-side glue, kept tiny: the sources panel reports which passage was clicked; the document viewer
# scrolls the highlighted span into view whenever its content changes.
SOURCES_JS = """
element.addEventListener('click', (e) => {
  const b = e.target.closest('button.qa-src');
  if (b) trigger('click', {idx: Number(b.dataset.idx)});
});
"""
SCROLL_JS = """
// Scroll the document box only, never the page: on a phone the viewer is below the chat, and scrolling the page
// to it would carry the answer off screen. The mark is placed a third of the way down the box, not at its edge.
const show = () => { const m = element.querySelector('mark.qa-focus'); const box = element.querySelector('.qa-doc-body');
  if (m && box) box.scrollTop += m.getBoundingClientRect().top - box.getBoundingClientRect().top - box.clientHeight / 3;
  // A new answer has arrived: bring its bubble into view (the page may have scrolled with the input box).
  const rows = document.querySelectorAll('#qa-chat .message-row'); const last = rows[rows.length - 1];
  if (last) last.scrollIntoView({block: 'nearest'}); };
watch('value', show); show();
"""


# ---------------------------------------------------------------------------------------------------
# Look, corpus and feedback (issue 10): the corpus named up front, the question counter, votes on answers
# ---------------------------------------------------------------------------------------------------


def corpus_titles(bot) -> list[str]:
    """The corpus's document titles (the file name when a document has none), as the library gives them."""
    try:
        docs = list(getattr(bot, "documents", None) or getattr(bot, "_corpus", {}) or ())
        titles = getattr(bot, "titles", {}) or {}
    except QABotError:  # an unreadable corpus: the first question will say so
        return []
    return [titles.get(src) or src for src in sorted(docs)]


def render_corpus(titles: Sequence[str]) -> str:
    """'Ask the article: <title>', or for several documents their count and the first few titles."""
    if not titles:
        return '<h1 class="qa-title">Ask the documents</h1>'
    if len(titles) == 1:
        head, sub = f"Ask the article: {titles[0]}", "1 document"
    else:
        shown = "; ".join(titles[:3]) + (f"; and {len(titles) - 3} more" if len(titles) > 3 else "")
        head, sub = f"Ask {len(titles)} documents", shown
    return (f'<h1 class="qa-title">{esc(head)}</h1><p class="qa-corpus">{esc(sub)}. Answers cite numbered '
            "passages; select one to see it in the full text. Documents you add stay until you reload the page "
            "(Clear chat keeps them).</p>")


# The counter is updated in the browser (no server round trip per key): "123 / 2,000", red past the limit.
COUNTER_JS = """(q, limit) => { const n = (q || '').length; const el = document.querySelector('#qa-count .qa-count');
  if (el) { el.textContent = n > limit ? `${n.toLocaleString()} / ${limit.toLocaleString()} characters: too long, please shorten it`
    : (n > limit * 0.8 ? `${n.toLocaleString()} / ${limit.toLocaleString()} characters` : '');
    el.classList.toggle('qa-over', n > limit); } return []; }"""


def upload_precheck_js(settings: Settings) -> str:
    """js_on_load for the upload note: a file of a kind or size the library refuses is stopped in the page, before
    Gradio's own size check (whose wording and units differ) or any upload, and the library's own message is
    shown in the note, the one place every upload message goes. The messages are check_upload's, made once
    with placeholders, so they follow whatever formats and limit the library accepts."""
    import json

    from .pipeline import check_upload, human_size

    def message(name: str, size: int) -> str:
        try:
            check_upload(settings, name, size)
        except QABotError as e:
            return str(e)
        return ""

    rules = {"suffixes": [x.lower() for x in DOC_SUFFIXES], "max": settings.max_upload_bytes,
             "kind": message("NAME.x", 0).replace("NAME.x", "{name}"),
             "size": message("NAME.txt", settings.max_upload_bytes + 1).replace("NAME.txt", "{name}").replace(
                 human_size(settings.max_upload_bytes + 1), "{size}", 1)}
    return """
const R = %s;
const mb = (n) => n < 1048576 ? `${Math.round(n / 1024).toLocaleString('en')} KB`
  : `${(n / 1048576).toFixed(1)} MB`.replace('.0 MB', ' MB');
document.addEventListener('change', (e) => {
  const input = e.target;
  const btn = document.getElementById('qa-upload');  // the upload button's hidden input sits beside it
  if (!(input instanceof HTMLInputElement) || input.type !== 'file' || !btn || !btn.parentElement.contains(input)) return;
  const f = input.files && input.files[0];
  if (!f) return;
  const dot = f.name.lastIndexOf('.'); const suffix = dot >= 0 ? f.name.slice(dot).toLowerCase() : '';
  let msg = '';
  if (!R.suffixes.includes(suffix)) msg = R.kind.replace('{name}', f.name);
  else if (f.size > R.max) msg = R.size.replace('{name}', f.name).replace('{size}', mb(f.size));
  if (!msg) return;
  e.stopImmediatePropagation(); e.preventDefault(); input.value = '';
  element.innerHTML = '<div class="qa-msg qa-error" role="alert"></div>';
  element.firstChild.textContent = '⚠ ' + msg;
}, true);
""" % json.dumps(rules)


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


def render_counter() -> str:
    return '<div class="qa-count" aria-live="polite"></div>'


def record_feedback(store, bot, vote: str, comment: str, turns, items) -> tuple[str, Any]:
    """Store a vote on the last answer (its question, text, citations, the model) and say so; a store that
    cannot be written gives a one-line message and the comment stays in its box."""
    from .feedback import Feedback, FeedbackError

    if not turns:
        return render_error("Ask a question first; then rate its answer."), gr.skip()
    question, answer = turns[-1]
    cites = tuple({k: it[k] for k in ("n", "source", "start", "end", "text")} for it in items or [] if it.get("cited"))
    try:
        info = bot.model_info() if callable(getattr(bot, "model_info", None)) else {}
    except Exception:  # the vote matters more than the model's description
        info = {}
    try:
        store.add(Feedback(vote, question, answer, cites, comment or "", info))
    except FeedbackError as e:
        log.warning("feedback not saved: %s", e)
        return render_error(f"Your feedback was not saved: {e}"), gr.skip()  # the comment stays in its box
    return f'<div class="qa-note">Thanks: your vote ({"helpful" if vote == "up" else "not helpful"}) on the last answer was saved.</div>', ""


# ---------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------


def check_ask_inputs(question: Any, history: Any) -> tuple[str, list[tuple[str, str]]]:
    """The /ask endpoint's inputs, checked: a malformed call gets a message saying what is wrong."""
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


class Blocks(gr.Blocks):
    """gr.Blocks whose API answers every malformed call with a message instead of {"error": null} (with
    show_error=False Gradio hides the text of anything but gr.Error): a call with the wrong number of inputs,
    or an input its component cannot read. A call may omit trailing optional inputs (qa_optional_inputs:
    api_name -> how many), e.g. a raw POST /gradio_api/call/ask with {"data": ["question"]} (gradio_client
    fills defaults itself; raw HTTP callers do not)."""

    qa_optional_inputs: dict[str, int] = {}

    def validate_inputs(self, block_fn, inputs: list[Any]):
        name = block_fn.api_name or block_fn.name
        most = len(block_fn.inputs)
        least = most - self.qa_optional_inputs.get(name, 0)
        if not least <= len(inputs) <= most:
            takes = f"{most}" if least == most else f"{least} to {most}"
            raise gr.Error(f"/{name} takes {takes} input{'s' * (most != 1)}; got {len(inputs)}.")
        inputs.extend([None] * (most - len(inputs)))  # the handler's default for each omitted input

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except Exception as exc:
            log.info("malformed call to /%s: %s", block_fn.api_name or block_fn.name, exc)
            raise gr.Error(f"/{block_fn.api_name or block_fn.name}: {_input_problem(block_fn, exc)}") from None


def _input_problem(block_fn, exc: Exception) -> str:
    """What was wrong with a call's inputs, in a line, naming the input where Gradio's error says which."""
    from pydantic import ValidationError

    from gradio.exceptions import InvalidPathError

    if isinstance(exc, InvalidPathError):
        return f"a file input must be a path that {UPLOAD_PATH} returned."
    if isinstance(exc, ValidationError):
        where = next((f"input {i + 1} ({type(b).__name__})" for i, b in enumerate(block_fn.inputs)
                      if getattr(getattr(b, "data_model", None), "__name__", None) == exc.title), "an input")
        first = exc.errors()[0] if exc.errors() else {}
        return f"{where} is malformed: {str(first.get('msg', 'invalid value')).rstrip('.')}."
    return "an input is malformed; see the API page (footer: Use via API) for the expected shapes."


class Handlers:
    """The app's event handlers, around one bot and the upload store (plain methods, so they can be tested
    without a server; Gradio reads their signatures for gr.EventData and gr.Progress)."""

    def __init__(self, bot, uploads: UploadStore | None = None):
        self.bot, self.uploads = bot, uploads

    def doc_for(self, items, session, idx: int) -> str:
        it = items[idx]
        try:
            text = self.bot.document_text(it["source"], session)
        except Exception:  # a stale click (e.g. after Clear) must not break the page
            log.exception("cannot open %s", it.get("source"))
            return render_error(f"Cannot open {it['source']}.")
        label = f"[{it['n']}]" if it.get("cited") else ""
        return render_document(text, [(it["start"], it["end"])], title=it["source"], label=label)

    def respond(self, question, chat, turns, session):
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat = list(chat or []) + [{"role": "user", "content": render_user(question)},
                                   {"role": "assistant", "content": render_streaming("")}]
        yield "", chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        text, answer = "", None
        try:
            for piece in self.bot.ask_stream(question, history=[tuple(t) for t in turns or []], session=session):
                if isinstance(piece, Answer):
                    answer = piece
                else:
                    text += piece
                    chat[-1] = {"role": "assistant", "content": render_streaming(text)}
                    yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            if answer is None:
                raise QABotError("The answer was cut off; please try again.")
        except QABotError as e:  # user-facing message; never a traceback
            chat[-1] = {"role": "assistant", "content": render_error(str(e))}
            yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        except Exception:
            log.exception("answering %r failed", question)
            chat[-1] = {"role": "assistant", "content": render_error("Something went wrong; please try again.")}
            yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat[-1] = {"role": "assistant", "content": render_message(answer)}
        items = source_items(answer, getattr(self.bot.settings, "min_similarity", None))
        # Open the first cited passage right away; a refusal only lists its closest passages.
        doc = self.doc_for(items, session, 0) if answer.citations else EMPTY_DOC
        turns = list(turns or []) + [(question, answer.text)]
        refusal = answer.text if answer.abstained else REFUSAL  # a refusal's list is headed by its own wording
        yield "", chat, turns, items, render_sources(items, answer.abstained, refusal), doc

    def show_source(self, items, session, evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        try:
            idx = int(data.get("idx"))
        except (TypeError, ValueError):
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

    def ask(self, question: str, history: list[list[str]] | None = None) -> dict:
        """Answer a question about the article. history (optional): [[question, answer], ...], oldest first,
        for follow-ups. Returns the answer (text, abstained, citations, retrieved, timings, standalone_question)."""
        question, pairs = check_ask_inputs(question, history)
        try:
            answer = self.bot.ask(question, history=pairs)
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


def build_app(bot, *, queue_size: int = 8, examples: Sequence[str] = EXAMPLES, api: bool = True,
              api_keys: Sequence[str] | None = None) -> gr.Blocks:
    """The chat app around `bot` (a qa_bot.QABot or anything with the same interface), and, with api=True,
    the OpenAI-compatible API (qa_bot.api) that launch() serves on the same port. api_keys: None reads
    QA_BOT_API_KEYS (raises QABotError when it is malformed); () means the API needs no key."""
    h = Handlers(bot)  # launch() gives it the upload store: files are kept only while the app is served
    from .feedback import FeedbackStore

    feedback = FeedbackStore(bot.settings.feedback_db)
    titles = corpus_titles(bot)
    with Blocks(title=f"Ask the article: {titles[0]}" if len(titles) == 1 else "Ask the documents",
                analytics_enabled=False) as demo:
        turns = gr.State([])  # [(question, answer text)]: what the library needs to rewrite follow-ups
        session = gr.State(None)  # this browser session's own documents; gr.State is per session, never shared
        items = gr.State([])  # the passages listed for the last answer, for source clicks
        with gr.Row():
            gr.HTML(render_corpus(titles), elem_id="qa-corpus")
            theme_btn = gr.Button("Light / dark", elem_id="qa-theme", size="sm", scale=0, min_width=110)
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Chat", elem_id="qa-chat", height=460, render_markdown=False,
                                  sanitize_html=True, feedback_options=None, buttons=[])  # copy would copy our HTML
                with gr.Row():
                    # No max_length: the browser would cut a long paste silently; the counter warns and the
                    # library refuses an over-long question with a message instead.
                    msg = gr.Textbox(placeholder="Ask a question…", show_label=False, label="Question",
                                     elem_id="qa-input", scale=5, max_lines=6)
                    send = gr.Button("Ask", variant="primary", elem_id="qa-send", scale=1, min_width=80)
                with gr.Row():
                    clear_btn = gr.Button("Clear chat", elem_id="qa-clear", size="sm")
                    upload = gr.UploadButton(f"Add a {' / '.join(DOC_SUFFIXES)} document",
                                             file_types=list(DOC_SUFFIXES), elem_id="qa-upload", size="sm")
                counter = gr.HTML(render_counter(), elem_id="qa-count")
                with gr.Row():
                    added = gr.Dropdown([], label="Your added documents (this browser session)", visible=False,
                                        elem_id="qa-added", scale=4, interactive=True)
                    remove_btn = gr.Button("Remove", elem_id="qa-remove", size="sm", scale=1, min_width=80, visible=False)
                upload_note = gr.HTML("", elem_id="qa-upload-note", js_on_load=upload_precheck_js(bot.settings))
                with gr.Row(elem_id="qa-fb"):
                    fb_comment = gr.Textbox(placeholder="Optional comment on the last answer", show_label=False,
                                            label="Comment", elem_id="qa-fb-comment", scale=4, max_lines=3)
                    fb_up = gr.Button("Helpful", elem_id="qa-fb-up", size="sm", scale=1, min_width=90)
                    fb_down = gr.Button("Not helpful", elem_id="qa-fb-down", size="sm", scale=1, min_width=90)
                fb_note = gr.HTML("", elem_id="qa-fb-note")
                ex = gr.Examples([[q] for q in examples], inputs=[msg], label="Examples (click to ask)",
                                 api_visibility="private")
            with gr.Column(scale=2):
                sources = gr.HTML(render_sources([]), elem_id="qa-sources", js_on_load=SOURCES_JS)
                doc = gr.HTML(EMPTY_DOC, elem_id="qa-doc", js_on_load=SCROLL_JS)

        model = dict(concurrency_limit=1, concurrency_id=MODEL)
        chat_io = dict(fn=h.respond, inputs=[msg, chat, turns, session],
                       outputs=[msg, chat, turns, items, sources, doc], show_progress="minimal", show_progress_on=[chat],
                       **model)
        msg.submit(api_name="chat", api_visibility="undocumented", **chat_io)
        send.click(api_visibility="private", **chat_io)
        ex.load_input_event.then(api_visibility="private", **chat_io)
        sources.click(h.show_source, [items, session], [doc], queue=False, api_visibility="private")
        clear_btn.click(h.clear, None, [chat, turns, items, sources, doc, upload_note], queue=False,
                        api_visibility="private")
        # Embedding an upload is slow (~40 s for 1 MB on 2 cores): it has its own concurrency group, so it never
        # takes the model's slot, and the library embeds it between questions, showing progress meanwhile.
        upload_done = upload.upload(h.add_document, [upload, session], [session, upload_note], api_name="add_document",
                      api_visibility="undocumented", preprocess=False, concurrency_limit=1, concurrency_id=UPLOADS)
        gr.api(h.ask, api_name="ask", **model)
        upload_done.then(lambda s: added_documents(bot, s), [session], [added, remove_btn], queue=False, api_visibility="private")
        remove_btn.click(lambda s, n: remove_added(bot, s, n), [session, added], [session, upload_note, added, remove_btn],
                         concurrency_limit=1, concurrency_id=UPLOADS, api_visibility="private")
        theme_btn.click(None, js=TOGGLE_JS)
        demo.load(None, js=RESTORE_JS)
        limit = gr.Number(bot.settings.max_question_chars, visible=False)
        msg.input(None, [msg, limit], None, js=COUNTER_JS)
        for btn, kind in ((fb_up, "up"), (fb_down, "down")):
            btn.click(lambda c, t, i, kind=kind: record_feedback(feedback, bot, kind, c, t, i),
                      [fb_comment, turns, items], [fb_note, fb_comment], queue=False, api_visibility="private")
    demo.qa_optional_inputs = {"ask": 1}  # /ask may omit its last input, history

    # A bounded queue: when max_size events wait, Gradio answers "busy, please try again" instead of queueing.
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    demo.qa_handlers = h
    if api:  # the OpenAI-compatible API (/v1), served by launch() beside the chat, with the same queue bound
        from .api import OpenAIAPI

        demo.qa_api = OpenAIAPI(bot, queue_size=queue_size, api_keys=api_keys)
    return demo


def launch(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = None, **kwargs):
    """Serve offline and locked down: no share link, no SSR node server, no MCP; uploads only through the
    upload store's route (qa_bot.web), every request body capped, and Gradio's file route serving neither
    this repo (corpus and cache included) nor pending uploads. The app's OpenAI-compatible API, if build_app
    made one, is served on the same host and port under /v1."""
    from gradio.utils import get_upload_folder
    from starlette.middleware import Middleware

    from .pipeline import check_upload

    handlers = getattr(demo, "qa_handlers", None)
    settings = handlers.bot.settings if handlers is not None else Settings.from_env()
    uploads = UploadStore(get_upload_folder(), settings)
    if handlers is not None:
        handlers.uploads = uploads
    routes = [upload_route(uploads, lambda name, size: check_upload(settings, name, size))]
    api = getattr(demo, "qa_api", None)
    if api is not None:
        from .api import exposure_warning

        if warning := exposure_warning(host, api):
            log.warning(warning)
        routes += api.routes
    # Routes given to the FastAPI app at creation come before all of Gradio's own (ours replace its upload route).
    app_kwargs = dict(kwargs.pop("app_kwargs", {}))
    app_kwargs["routes"] = [*app_kwargs.get("routes", []), *routes]
    app_kwargs["middleware"] = [*app_kwargs.get("middleware", []),
                                Middleware(RequestGuard, max_bytes=settings.max_request_bytes, store=uploads)]
    user_lifespan = app_kwargs.get("lifespan")

    @contextlib.asynccontextmanager
    async def lifespan(app):  # pending uploads are deleted when the server stops
        try:
            if user_lifespan is None:
                yield
            else:
                async with user_lifespan(app) as state:
                    yield state
        finally:
            uploads.close()

    app_kwargs["lifespan"] = lifespan
    return demo.launch(
        server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False, pwa=False,
        allowed_paths=[], blocked_paths=[str(REPO_ROOT)], show_error=False,
        # The page refuses a file over the limit before sending it (the upload button shows no server error);
        # the upload route applies the whole upload policy to any other client.
        max_file_size=settings.max_upload_bytes, run_history=False, theme=gr.themes.Default(), css=CSS,
        footer_links=["api"], app_kwargs=app_kwargs, **kwargs)
