"""The chat's HTML, as pure functions (text in, HTML out), so escaping is unit-tested without a browser: answers
with their citation markers, the chat's bubbles, the sources list, the document with the cited span highlighted,
the corpus header and the note under the question box. Every piece of document, answer or user text passes
through `esc` before it becomes HTML.
"""
from __future__ import annotations

import html
import re
import time
from typing import Any, Sequence

from . import REFUSAL
from .chat import DONE, ERROR, QUEUED, RUNNING, SEARCHING, STOPPED, Turn, copy_text, shown_source
from .sanitize import visible
from .types import Answer, Stage

REWRITE_SHOWN_CHARS = 90  # "searched for: ..." under an answer stays one line on a desktop; the full text is its title


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
        near = [e for e, v in sims if v is not None and v >= min_similarity]
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


def render_counter(problem: str = "") -> str:
    """The note under the question box: the character count near the limit (COUNTER_JS), or why a question
    was not sent."""
    if problem:
        return f'<div class="qa-count qa-over" role="alert">⚠ {esc(problem)}</div>'
    return '<div class="qa-count" aria-live="polite"></div>'
