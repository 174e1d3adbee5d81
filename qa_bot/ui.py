"""The Gradio chat: streamed answers, numbered sources, and the cited span highlighted in the full text.

Rendering helpers are pure functions (text in, HTML out) so escaping can be unit-tested without a browser.
Every piece of document, answer or user text passes through `esc` before it becomes HTML.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # set before gradio is imported: no telemetry calls

import contextlib
import html
import itertools
import logging
import re
import time
from typing import Any, Sequence

import gradio as gr

from . import REFUSAL
from .chat import (DONE, ERROR, MAX_QUEUED, QUEUED, RUNNING, SEARCHING, STOPPED, Conversation, Turn, citation_item,
                   copy_text, shown_source)
from .errors import InvalidQuestion, QABotError
from .ingest import DOC_SUFFIXES
from .question import clean_question
from .sanitize import visible
from .settings import REPO_ROOT, Settings
from .theme import CSS, RESTORE_JS, TOGGLE_JS
from .types import Answer, Stage
from .web import UPLOAD_PATH, HostGuard, RequestGuard, UploadStore, upload_route

log = logging.getLogger(__name__)

# Each stands alone (a first question cannot be a follow-up) and fits Gradio's example button, which shows an
# example's first EXAMPLE_CHARS characters only ("...in the firs..."); the last is not in the article.
EXAMPLES = [
    "When did Alibaba go public in New York?",
    "What is Alibaba doing with its cloud unit?",
    "How much did the cloud business earn in the first quarter?",
    "Who is the chairman and CEO of Alibaba Group?",
    "What is Alibaba's share price today?",  # not in the article: shows a refusal
]
EXAMPLE_CHARS = 60
REWRITE_SHOWN_CHARS = 90  # "searched for: ..." under an answer stays one line on a desktop; the full text is its title
MODEL = "model"  # concurrency group of every event that touches the models (llama.cpp is not thread-safe)
UPLOADS = "uploads"  # concurrency group of adding documents: slow, and kept out of the answers' way
# How often an open page asks whether a watched corpus changed (app.py --watch): a request that returns nothing
# unless it did, so the header is at most this stale.
WATCH_REFRESH_SECONDS = 5.0

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


def render_answer_text(text: str, turn_id: int | None = None, items: Sequence[dict[str, Any]] = ()) -> str:
    """Escaped answer text with [n] markers turned into citation badges. With the answer's turn and source
    items, a marker whose citation is known becomes a control (data-citation, data-turn) carrying the cited
    sentence (hidden): on hover, focus or a tap the page shows it in a panel under the answer (CITE_JS), and a
    click also opens it in the document."""
    body = esc(text).replace("\n", "<br>")
    cited = {it["n"]: it for it in items if it.get("cited")} if turn_id is not None else {}

    def badge(m: re.Match) -> str:
        n = int(m.group(1))
        it = cited.get(n)
        if it is None:
            return f'<sup class="qa-cite" data-n="{n}">[{n}]</sup>'
        # The chat's sanitizer drops data-* attributes: the classes carry them, and the page's script
        # (SCROLL_JS) puts data-citation / data-turn back on the marker.
        return (f'<sup class="qa-cite qa-cite-link qa-turn-{turn_id} qa-n-{n}" data-n="{n}" data-citation="{n}" '
                f'data-turn="{turn_id}" '
                f'tabindex="0" role="button">[{n}]<span class="qa-preview"><span class="qa-preview-text">'
                f'{esc(it["text"])}</span><span class="qa-preview-src">{esc(shown_source(it["source"]))}</span></span></sup>')

    return re.sub(r"\[(\d+)\]", badge, body)


def render_message(answer: Answer, turn_id: int | None = None, items: Sequence[dict[str, Any]] = ()) -> str:
    """The assistant chat bubble for a finished answer; a refusal gets its own look. With its turn and items
    the markers are clickable and the bubble has a Copy button (answer plus cited sentences)."""
    if answer.abstained:
        body = (f'<div class="qa-msg qa-refusal"><span class="qa-badge">No answer</span> '
                f"{esc(answer.text or REFUSAL)}</div>")
    else:
        body = f'<div class="qa-msg qa-answer">{render_answer_text(answer.text, turn_id, items)}</div>'
    if turn_id is not None:
        plain = copy_text(Turn(turn_id, answer.question, DONE, answer.text, items=tuple(items)))
        body += (f'<div class="qa-tools"><button type="button" class="qa-copy">Copy</button>'
                 f'<span class="qa-copytext">{esc(plain)}</span></div>')
    meta = []
    if answer.standalone_question and answer.standalone_question.strip() != answer.question.strip():
        full = answer.standalone_question.strip()
        meta.append(f'<span class="qa-rewrite" title="{esc(full)}">searched for: “{esc(shorten(full))}”</span>')
    timings = {k: v for k, v in answer.timings.items() if k != "rewrite" or answer.standalone_question}
    if timings:
        meta.append(f'<span class="qa-timings">{esc(format_timings(timings))}</span>')
    return body + (f'<div class="qa-meta">{" · ".join(meta)}</div>' if meta else "")


def shorten(text: str, limit: int = REWRITE_SHOWN_CHARS) -> str:
    """text cut at a word to about `limit` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,;:(") + "…"


def render_streaming(text: str, stage: str = "") -> str:
    """A partial answer; before its first verified words, what the reader is doing (`stage`)."""
    now = f'<span class="qa-stage">{esc(stage)}</span>' if stage and not text else ""
    return (f'<div class="qa-msg qa-answer qa-streaming">{now}{render_answer_text(text)}'
            f'<span class="qa-cursor">▌</span></div>')


def stage_label(stage: Stage) -> str:
    """What the reader is doing, in words, for the bubble of an answer that has no verified text yet."""
    if stage.name == "reading":
        return f"Reading {stage.passages} passage{'s' * (stage.passages != 1)}…"
    if stage.name == "reading again":
        return "Reading the next passages…"
    if stage.name == "checking":
        return "Checking the answer against its source…"
    return SEARCHING


def render_turn(turn: Turn) -> str:
    """The assistant bubble of a turn, by its status."""
    if turn.status == QUEUED:
        return ('<div class="qa-msg qa-queued"><span class="qa-badge">Queued</span> '
                "answered after the current question…</div>")
    if turn.status == RUNNING:
        return render_streaming(turn.text, turn.stage)
    if turn.status == ERROR:
        return render_error(turn.text)
    if turn.status == STOPPED:  # the verified words so far, if any
        said = render_answer_text(turn.text) if turn.text else "not answered"
        return f'<div class="qa-msg qa-stopped"><span class="qa-badge">Stopped</span> {said}</div>'
    if turn.vote:  # the confirmation of a thumb goes under the answer it rates, beside the thumbs
        kind = "helpful" if turn.vote == "up" else "not helpful"
        return turn.html + f'<div class="qa-voted">Thanks: your vote ({kind}) on this answer was saved.</div>'
    return turn.html


def render_chat(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The Chatbot's messages for a conversation: each question, then its answer bubble."""
    out = []
    for t in turns:
        out += [{"role": "user", "content": render_user(t.question)}, {"role": "assistant", "content": render_turn(t)}]
    return out


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
        return [{"n": c.n, "source": c.source, "start": c.start, "end": c.end, "text": c.text, "cited": True,
                 "title": c.title, "date": c.date, "page": c.page} for c in answer.citations]
    hits = list(answer.retrieved)
    sims = [(e, getattr(e, "similarity", None)) for e in answer.evidence]
    if min_similarity is not None and sims and all(v is not None for _, v in sims):
        near = [e for e, v in sims if v >= min_similarity]
        hits = [h for h in hits if any(e.source == h.chunk.source and h.chunk.start <= e.start < h.chunk.end
                                       for e in near)]
    return [{"n": i, "source": h.chunk.source, "start": h.chunk.start, "end": h.chunk.end, "text": h.chunk.text,
             "cited": False} for i, h in enumerate(hits, 1)]


def _document_name(it: dict[str, Any]) -> str:
    """"file.pdf, p. 2 — Title (2023-05-12)": the file, and for a citation its page, title and date."""
    name = f"{visible(shown_source(it['source']))}, p. {it['page']}" if it.get("page") else visible(shown_source(it["source"]))
    about = " ".join(x for x in (it.get("title", ""), f"({it['date']})" if it.get("date") else "") if x)
    return f"{name} — {about}" if about else name


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
            f'<span class="qa-n">{esc(label)}</span> <span class="qa-name">{esc(_document_name(it))}</span>'
            f'<span class="qa-passage">{esc(it["text"])}</span></button></li>')
    kind = "qa-closest" if abstained else "qa-cited"
    return f'<div class="qa-sources {kind}"><div class="qa-head">{esc(head)}</div><ol>{"".join(rows)}</ol></div>'


def render_document(text: str, spans: Sequence[tuple[int, int]], *, title: str = "", focus: int = 0,
                    label: str = "", pick: int | None = None) -> str:
    """The whole document, escaped, with each span wrapped in <mark>; spans[focus] gets class qa-focus
    (the viewer scrolls it into view) and its text an element marked data-highlight. Spans are clipped to
    the text; overlapping ones are merged. `pick` numbers the selection, so selecting the same passage again
    still changes the HTML and the viewer scrolls the highlight back into view."""
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
        inner = f'<span data-highlight="">{esc(text[s:e])}</span>' if f else esc(text[s:e])
        out.append(f'{esc(text[pos:s])}<mark class="{cls}">{tag}{inner}</mark>')
        pos = e
    out.append(esc(text[pos:]))
    head = f'<div class="qa-doc-title">{esc(title)}</div>' if title else ""
    nonce = f' data-pick="{int(pick)}"' if pick is not None else ""
    return (f'<div class="qa-doc"{nonce}>{head}<div class="qa-doc-body" tabindex="0" role="region" '
            f'aria-label="Document text">{"".join(out)}</div></div>')


EMPTY_DOC = '<div class="qa-doc qa-empty">Select a source to read it in context.</div>'

# Client-side glue, kept tiny: the sources panel reports which passage was clicked; the document viewer
# scrolls the highlighted span into view whenever its content changes.
SOURCES_JS = """
element.addEventListener('click', (e) => {
  const b = e.target.closest('button.qa-src');
  if (b) trigger('click', {idx: Number(b.dataset.idx)});
});
"""
SCROLL_JS = r"""
// Scroll the document box only, never the page: on a phone the viewer is below the chat, and scrolling the page
// to it would carry the answer off screen. The mark is placed a third of the way down the box, not at its edge.
let rowsSeen = 0;
const show = () => { const m = element.querySelector('mark.qa-focus'); const box = element.querySelector('.qa-doc-body');
  if (m && box) box.scrollTop += m.getBoundingClientRect().top - box.getBoundingClientRect().top - box.clientHeight / 3;
  // A new answer has arrived: bring its bubble into view (the page may have scrolled with the input box). Not
  // when a citation of an answer already there was opened: the chat stays where that answer's marker is.
  const rows = document.querySelectorAll('#qa-chat .message-row'); const last = rows[rows.length - 1];
  if (last && rows.length !== rowsSeen) last.scrollIntoView({block: 'nearest'});
  rowsSeen = rows.length; };
watch('value', show); show();
// Citation markers in any answer (old ones too) open their cited sentence here; Copy copies an answer with
// its sources. One listener on the page: the chat re-renders its bubbles.
const cite = (e) => {
  const c = e.target.closest('#qa-chat [data-citation]');
  if (c) { trigger('click', {turn: Number(c.dataset.turn), n: Number(c.dataset.citation)}); return true; }
  return false;
};
document.addEventListener('click', (e) => {
  if (cite(e)) return;
  const b = e.target.closest('#qa-chat button.qa-copy');
  if (!b) return;
  const t = b.parentElement.querySelector('.qa-copytext').textContent;
  const done = () => { b.textContent = 'Copied'; setTimeout(() => { b.textContent = 'Copy'; }, 1500); };
  if (navigator.clipboard) navigator.clipboard.writeText(t).then(done, done); else done();
});
const tag = () => document.querySelectorAll('#qa-chat .qa-cite-link:not([data-citation])').forEach((m) => {
  for (const c of m.classList) {
    const t = /^qa-turn-(\d+)$/.exec(c), n = /^qa-n-(\d+)$/.exec(c);
    if (t) m.dataset.turn = t[1];
    if (n) m.dataset.citation = n[1];
  }
});
new MutationObserver(tag).observe(document.body, {subtree: true, childList: true});
tag();
document.addEventListener('keydown', (e) => {
  if ((e.key === 'Enter' || e.key === ' ') && cite(e)) e.preventDefault(); });
"""
# A marker's cited sentence, in a panel under its answer: shown while the pointer is on the marker, and from a
# focus or tap until focus leaves the markers, Escape, or a click anywhere but the marker and the panel. In the
# bubble's flow it covers nothing (the next marker, Copy), is never wider than the bubble (no sideways scroll on a
# phone) and is in view wherever the marker is (a phone's document view is screens below).
CITE_JS = r"""
(() => {
  let pinned = null, hovered = null;
  const marker = (t) => (t && t.closest) ? t.closest('#qa-chat [data-citation]') : null;
  const panels = () => document.querySelectorAll('#qa-chat .qa-cite-panel');
  const open = (m) => {
    // Inside the answer's own element, after its text: Gradio's renderer owns the nodes around it, and a node
    // added among them would break its next update of the chat.
    const msg = m.closest('.qa-msg'); if (!msg) return;
    let p = msg.querySelector(':scope > .qa-cite-panel');
    if (!p) { p = document.createElement('div'); p.className = 'qa-cite-panel'; p.setAttribute('role', 'status');
      msg.append(p); }
    const part = (cls, text) => { const s = document.createElement('span'); s.className = cls; s.textContent = text; return s; };
    const text = m.querySelector('.qa-preview-text'), src = m.querySelector('.qa-preview-src');
    p.replaceChildren(part('qa-panel-n', '[' + (m.dataset.citation || '') + '] '),
                      part('qa-panel-text', text ? text.textContent : ''), part('qa-panel-src', src ? src.textContent : ''));
    p.hidden = false;
    panels().forEach((o) => { if (o !== p) o.hidden = true; });
  };
  const close = () => { pinned = hovered = null; panels().forEach((p) => { p.hidden = true; }); };
  const settle = () => { const m = hovered || pinned; if (m && m.isConnected) open(m); else close(); };
  document.addEventListener('mouseover', (e) => { const m = marker(e.target); if (m && m !== hovered) { hovered = m; open(m); } });
  document.addEventListener('mouseout', (e) => {
    const m = marker(e.target); if (!m || m.contains(e.relatedTarget)) return; hovered = null; settle(); });
  // Focus leaving a marker by the keyboard closes it at once; by a press elsewhere, at that press's click: closing
  // on the press would move what is below the panel up, away from under the pointer, and the click would miss.
  let pressing = false;
  document.addEventListener('pointerdown', () => { pressing = true; }, true);
  document.addEventListener('focusin', (e) => { const m = marker(e.target); if (m) { pinned = m; open(m); } });
  document.addEventListener('focusout', (e) => {
    if (marker(e.target) && !marker(e.relatedTarget)) { pinned = null; if (!pressing) settle(); } });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && (pinned || hovered)) close(); });
  document.addEventListener('click', (e) => {
    pressing = false;
    if (!marker(e.target) && !(e.target.closest && e.target.closest('.qa-cite-panel'))) close(); });
  document.addEventListener('pointerup', () => setTimeout(() => {
    if (pressing) { pressing = false; if (!pinned) settle(); } }, 0));  // a press that made no click (a drag)
})();
"""
# Each bubble's accessible name is its text as shown. Gradio names a message "bot's message: " plus its raw
# content, which for these HTML bubbles is markup (a screen reader said "less-than div class equals qa-msg ...");
# it sets that again whenever it re-renders a bubble, so the name is set after every change, once a frame.
LABEL_JS = r"""
(() => {
  const who = {user: 'Question', bot: 'Answer'};
  const label = () => document.querySelectorAll('#qa-chat [data-testid="bot"], #qa-chat [data-testid="user"]').forEach((el) => {
    const msg = el.querySelector('.qa-msg'); if (!msg) return;
    const panel = msg.querySelector(':scope > .qa-cite-panel');  // a citation's sentence shown: not the message
    const text = panel && !panel.hidden ? msg.innerText.replace(panel.innerText, '') : msg.innerText;
    const name = who[el.dataset.testid] + ': ' + text.replace(/\s+/g, ' ').trim();
    if (el.getAttribute('aria-label') !== name) el.setAttribute('aria-label', name); });
  let queued = false;
  const soon = () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; label(); }); } };
  new MutationObserver(soon).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                     attributes: true, attributeFilter: ['aria-label']});
  label();
})();
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


def render_corpus(titles: Sequence[str], added: Sequence[str] = (), changed: float | None = None) -> str:
    """'Ask the article: <title>', or for several documents their count and the first few titles; documents
    added in this browser session are counted and named after them (control and bidi characters shown
    escaped: a file name's RLO would reverse the header after it); with `changed` (a followed corpus: app.py
    --watch), when the corpus last changed (time.time(), shown in UTC)."""
    titles, added = [visible(t) for t in titles], [visible(a) for a in added]
    if not titles and not added:
        return '<h1 class="qa-title">Ask the documents</h1>'
    if len(titles) == 1:
        head, sub = f"Ask the article: {titles[0]}", "1 document"
    elif titles:
        shown = "; ".join(titles[:3]) + (f"; and {len(titles) - 3} more" if len(titles) > 3 else "")
        head, sub = f"Ask {len(titles)} documents", shown
    else:
        head, sub = "Ask the documents", "no documents of its own"
    if added:
        sub += f", and {len(added)} you added ({', '.join(added)})"
    when = (f' <span class="qa-changed">Corpus last changed {time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(changed))}'
            '; followed for changes.</span>') if changed else ""
    return (f'<h1 class="qa-title">{esc(head)}</h1><p class="qa-corpus">{esc(sub)}. <span class="qa-corpus-more">'
            "Answers cite numbered passages; select one to see it in the full text. Documents you add stay until "
            f"you reload the page (Clear chat keeps them).</span>{when}</p>")


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

    from .uploads import check_upload, human_size

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


def render_counter(problem: str = "") -> str:
    """The note under the question box: the character count near the limit (COUNTER_JS), or why a question
    was not sent."""
    if problem:
        return f'<div class="qa-count qa-over" role="alert">⚠ {esc(problem)}</div>'
    return '<div class="qa-count" aria-live="polite"></div>'


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


def check_filter_inputs(**fields: Any) -> dict[str, str]:
    """The /ask endpoint's filter inputs: strings or null, the empty ones dropped (the bot checks the values)."""
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise gr.Error(f"/ask: {name} must be a string, not {type(value).__name__}.")
    return {name: value for name, value in fields.items() if value and value.strip()}


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
            new_turns = turns + [(question, done.text)] if done.status == DONE else gr.skip()
            yield (gr.skip(), before + render_chat([done]), new_turns, items, sources, doc)

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

    def ask(self, question: str, history: list[list[str]] | None = None, source: str | None = None,
            since: str | None = None, until: str | None = None) -> dict:
        """Answer a question about the article. history (optional): [[question, answer], ...], oldest first,
        for follow-ups. source/since/until (optional): only the documents this filter lets through (a file name,
        glob, publisher or site host; YYYY-MM-DD, inclusive). Returns the answer (text, abstained, citations,
        retrieved, timings, standalone_question)."""
        question, pairs = check_ask_inputs(question, history)
        flt = check_filter_inputs(source=source, since=since, until=until)
        try:
            answer = self.bot.ask(question, history=pairs, **flt)
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
        limit = getattr(getattr(self.bot, "settings", None), "max_question_chars", Settings.max_question_chars)
        try:
            clean_question(question, limit)
        except InvalidQuestion as e:
            return gr.skip(), gr.skip(), render_counter(f"{str(e)[:1].upper()}{str(e)[1:]}: shorten it and send it again.")
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
        data = getattr(evt, "_data", None) or {}
        try:
            turn_id, n = int(data.get("turn")), int(data.get("n"))
        except (TypeError, ValueError):
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


def build_app(bot, *, queue_size: int = 8, examples: Sequence[str] = EXAMPLES, api: bool = True,
              api_keys: Sequence[str] | None = None, watcher=None) -> gr.Blocks:
    """The chat app around `bot` (a qa_bot.QABot or anything with the same interface), and, with api=True,
    the OpenAI-compatible API (qa_bot.api) that launch() serves on the same port. api_keys: None reads
    QA_BOT_API_KEYS (raises QABotError when it is malformed); () means the API needs no key. watcher: the
    qa_bot.watch.CorpusWatcher following the corpus (app.py --watch): the header then says when it last changed."""
    h = Handlers(bot)  # launch() gives it the upload store: files are kept only while the app is served
    from .feedback import FeedbackStore
    from .uploads import human_size

    feedback = FeedbackStore(bot.settings.feedback_db)
    titles = corpus_titles(bot)
    with Blocks(title=f"Ask the article: {visible(titles[0])}" if len(titles) == 1 else "Ask the documents",
                analytics_enabled=False) as demo:
        turns = gr.State([])  # [(question, answer text)]: what the library needs to rewrite follow-ups
        session = gr.State(None)  # this browser session's own documents; gr.State is per session, never shared
        items = gr.State([])  # the passages listed for the last answer, for source clicks
        conv = gr.State(Conversation())  # the browser chat's turns and queue (each session gets its own copy)
        # The chat kept in this browser's localStorage, so it survives a reload. The secret only obscures the
        # stored copy; a fixed one keeps the history across server restarts too.
        saved = gr.BrowserState([], storage_key="qa_bot_chat", secret="qa-bot-local-history")
        with gr.Row():
            corpus = gr.HTML(render_corpus(titles, (), watcher.last_changed if watcher else None), elem_id="qa-corpus")
            theme_btn = gr.Button("Light / dark", elem_id="qa-theme", size="sm", scale=0, min_width=110)
        with gr.Row():
            with gr.Column(scale=3):
                # No fixed height: the chat grows with its messages up to max_height (then scrolls), so an empty
                # one takes one line and the question box and examples are on a phone's first screen. Its label
                # is not shown (Gradio floats it over the messages); screen readers get "Chat" from it still.
                chat = gr.Chatbot(label="Chat", show_label=False, elem_id="qa-chat", height=None, max_height=460,
                                  render_markdown=False, sanitize_html=True, feedback_options=("Like", "Dislike"),
                                  buttons=[],  # copy would copy our HTML
                                  placeholder="Answers appear here, each with the sentences it comes from.")
                with gr.Row():
                    # No max_length: the browser would cut a long paste silently; the counter warns and the
                    # library refuses an over-long question with a message instead.
                    msg = gr.Textbox(placeholder="Ask a question…", show_label=False, label="Question",
                                     elem_id="qa-input", scale=5, max_lines=6)
                    send = gr.Button("Ask", variant="primary", elem_id="qa-send", scale=1, min_width=80)
                counter = gr.HTML(render_counter(), elem_id="qa-count")
                ex = gr.Examples([[q] for q in examples], inputs=[msg], label="Examples (click to ask)",
                                 api_visibility="private", elem_id="qa-examples")
                with gr.Row():
                    # Not red: it is red (theme.CSS) only while an answer is written or waits.
                    stop_btn = gr.Button("Stop", elem_id="qa-stop", size="sm", variant="secondary")
                    regen_btn = gr.Button("Regenerate", elem_id="qa-regenerate", size="sm")
                    new_btn = gr.Button("New chat", elem_id="qa-new", size="sm")
                    clear_btn = gr.Button("Clear chat", elem_id="qa-clear", size="sm")
                    upload = gr.UploadButton(f"Add a {' / '.join(DOC_SUFFIXES)} document "
                                             f"(up to {human_size(bot.settings.max_upload_bytes)})",
                                             file_types=list(DOC_SUFFIXES), elem_id="qa-upload", size="sm")
                with gr.Accordion("Filter the documents", open=False, elem_id="qa-filter"):
                    with gr.Row():
                        f_source = gr.Textbox(label="Source", placeholder="file name, glob (news/*.html) or publisher",
                                              elem_id="qa-filter-source", scale=2, max_lines=1)
                        f_since = gr.Textbox(label="Since", placeholder="YYYY-MM-DD", elem_id="qa-filter-since",
                                             scale=1, max_lines=1)
                        f_until = gr.Textbox(label="Until", placeholder="YYYY-MM-DD", elem_id="qa-filter-until",
                                             scale=1, max_lines=1)
                with gr.Row():
                    added = gr.Dropdown([], label="Your added documents (this browser session)", visible=False,
                                        elem_id="qa-added", scale=4, interactive=True)
                    remove_btn = gr.Button("Remove", elem_id="qa-remove", size="sm", scale=1, min_width=80, visible=False)
                upload_note = gr.HTML("", elem_id="qa-upload-note", js_on_load=upload_precheck_js(bot.settings))
                with gr.Row(elem_id="qa-fb"):
                    fb_comment = gr.Textbox(placeholder="Optional comment, sent with your vote (👍/👎 on any answer)", show_label=False,
                                            label="Comment", elem_id="qa-fb-comment", scale=4, max_lines=3)
                    fb_up = gr.Button("Helpful", elem_id="qa-fb-up", size="sm", scale=1, min_width=90)
                    fb_down = gr.Button("Not helpful", elem_id="qa-fb-down", size="sm", scale=1, min_width=90)
                fb_note = gr.HTML("", elem_id="qa-fb-note")
            with gr.Column(scale=2):
                sources = gr.HTML(render_sources([]), elem_id="qa-sources", js_on_load=SOURCES_JS)
                doc = gr.HTML(EMPTY_DOC, elem_id="qa-doc", js_on_load=SCROLL_JS + CITE_JS + LABEL_JS)

        model = dict(concurrency_limit=1, concurrency_id=MODEL)
        # /chat: the stateless API form of a chat turn (question and chat in, bubbles and sources out).
        api_chat = gr.Button(visible=False)
        api_chat.click(h.respond, [msg, chat, turns, session], [msg, chat, turns, items, sources, doc],
                       api_name="chat", api_visibility="undocumented", **model)
        # The browser chat: a question is added at once (outside the queue, so one sent mid-answer shows as
        # queued and the box is free again), then `run` answers the queued questions in order.
        run_io = dict(fn=h.run, inputs=[conv, session, f_source, f_since, f_until],
                      outputs=[chat, items, sources, doc, saved],
                      show_progress="hidden", api_visibility="private", **model)
        runs = []
        for trigger in (msg.submit, send.click):
            runs.append(trigger(h.submit, [msg, conv], [msg, chat, counter], queue=False, api_visibility="private")
                        .then(**run_io))
        runs.append(ex.load_input_event.then(h.submit, [msg, conv], [msg, chat, counter], queue=False,
                                             api_visibility="private").then(**run_io))
        runs.append(regen_btn.click(h.regenerate, [conv], [chat], queue=False, api_visibility="private")
                    .then(**run_io))
        # Stop cancels the answering events (Gradio closes the generator, which closes the bot's stream).
        stop_btn.click(h.stop, [conv], [chat, saved], queue=False, cancels=runs, api_visibility="private")
        sources.click(h.show_source, [items, session], [doc], queue=False, api_visibility="private")
        doc.click(h.show_citation, [conv, session], [doc], queue=False, api_visibility="private")
        # One reset for the chat's trash icon, Clear chat and New chat.
        for trigger in (chat.clear, clear_btn.click, new_btn.click):
            trigger(h.reset, [conv], [conv, chat, items, sources, doc, upload_note, saved], queue=False,
                    cancels=runs, api_visibility="private")
        demo.load(h.restore, [saved, conv], [chat, items, sources], queue=False, api_visibility="private")
        def header(s):  # the corpus header: the library's titles, this session's added documents, when it changed
            return render_corpus(corpus_titles(bot), bot_documents(bot, s), watcher.last_changed if watcher else None)

        # Embedding an upload is slow (~40 s for 1 MB on 2 cores): it has its own concurrency group, so it never
        # takes the model's slot, and the library embeds it between questions, showing progress meanwhile.
        upload_done = upload.upload(h.add_document, [upload, session], [session, upload_note], api_name="add_document",
                      api_visibility="undocumented", preprocess=False, concurrency_limit=1, concurrency_id=UPLOADS)
        gr.api(h.ask, api_name="ask", **model)
        upload_done.then(lambda s: (*added_documents(bot, s), header(s)), [session],
                         [added, remove_btn, corpus], queue=False, api_visibility="private")
        removed = remove_btn.click(lambda s, n: remove_added(bot, s, n), [session, added],
                                   [session, upload_note, added, remove_btn], concurrency_limit=1, concurrency_id=UPLOADS,
                                   api_visibility="private")
        removed.then(header, [session], [corpus], queue=False,
                     api_visibility="private")
        theme_btn.click(None, js=TOGGLE_JS)
        demo.load(None, js=RESTORE_JS)
        limit = gr.Number(bot.settings.max_question_chars, visible=False)
        msg.input(None, [msg, limit], None, js=COUNTER_JS)
        for btn, kind in ((fb_up, "up"), (fb_down, "down")):
            btn.click(lambda c, cv, kind=kind: record_feedback(feedback, bot, kind, c, last_answered(cv)),
                      [fb_comment, conv], [fb_note, fb_comment], queue=False, api_visibility="private")

        def on_thumb(c, cv, evt: gr.LikeData):  # the thumbs on each answer bubble, old answers too
            vote = {True: "up", False: "down"}.get(evt.liked) if isinstance(evt.liked, bool) else None
            if vote is None:  # a thumb taken back: the vote already stored stays (votes are a log)
                return gr.skip(), gr.skip(), gr.skip()
            turn = voted_turn(cv, evt.index)
            if turn is None:  # a thumb under an error, stopped or queued bubble
                return render_error("Only a finished answer can be rated."), gr.skip(), gr.skip()
            note, comment = record_feedback(feedback, bot, vote, c, turn)
            if comment != "":  # not stored: the message is in the note, the comment kept
                return note, comment, gr.skip()
            cv.set_vote(turn.id, vote)  # the confirmation is shown under the answer, beside its thumbs
            return note, comment, render_chat(cv.snapshot())

        chat.like(on_thumb, [fb_comment, conv], [fb_note, fb_comment, chat], queue=False, api_visibility="private")
        if watcher is not None:  # the header follows the corpus: on load, then whenever the watcher swapped it
            shown = gr.State(-1)  # the corpus version this page shows (-1: the one built into the page)

            def corpus_changed(version, s):
                if version == watcher.version:
                    return gr.skip(), gr.skip()
                return header(s), watcher.version

            demo.load(corpus_changed, [shown, session], [corpus, shown], queue=False, api_visibility="private")
            gr.Timer(WATCH_REFRESH_SECONDS).tick(corpus_changed, [shown, session], [corpus, shown], queue=False,
                                                 api_visibility="private")
    demo.qa_optional_inputs = {"ask": 4}  # /ask may omit its last inputs: history, source, since, until

    # A bounded queue: when max_size events wait, Gradio answers "busy, please try again" instead of queueing.
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    demo.qa_handlers = h
    demo.qa_watcher = watcher
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

    from .uploads import check_upload

    handlers = getattr(demo, "qa_handlers", None)
    settings = handlers.bot.settings if handlers is not None else Settings.from_env()
    uploads = UploadStore(get_upload_folder(), settings)
    if handlers is not None:
        handlers.uploads = uploads
    routes = [upload_route(uploads, lambda name, size: check_upload(settings, name, size))]
    if handlers is not None:  # /healthz and /readyz (qa_bot.health): unauthenticated, before every other route
        from .health import health_routes

        routes = health_routes(handlers.bot, getattr(demo, "qa_watcher", None)) + routes
    api = getattr(demo, "qa_api", None)
    if api is not None:
        from .api import exposure_warning

        if warning := exposure_warning(host, api):
            log.warning(warning)
        routes += api.routes
    # Routes given to the FastAPI app at creation come before all of Gradio's own (ours replace its upload route).
    app_kwargs = dict(kwargs.pop("app_kwargs", {}))
    app_kwargs["routes"] = [*app_kwargs.get("routes", []), *routes]
    # Host names answered: the settings' (localhost names by default) and the address served on, when it is one.
    hosts = [*settings.host_patterns, *([host.lower().strip("[]")] if host not in ("0.0.0.0", "::", "") else [])]
    if host in ("0.0.0.0", "::") and "*" not in hosts:
        log.warning("serving on all addresses: requests are answered only for the hosts %s; set "
                    "QA_BOT_ALLOWED_HOSTS to the names your users reach this server by", ", ".join(hosts))
    app_kwargs["middleware"] = [Middleware(HostGuard, allowed=hosts), *app_kwargs.get("middleware", []),
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
