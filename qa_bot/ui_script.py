"""The chat page's own scripts (Gradio js_on_load and js= strings), kept tiny: the sources panel reports which
passage was clicked, the document viewer scrolls the highlighted span into view, a citation marker shows its
sentence, bubbles get readable names, the question box counts characters, and an upload the library would
refuse is stopped in the page.
"""
from __future__ import annotations

from .errors import QABotError
from .ingest import DOC_SUFFIXES
from .settings import Settings

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
