"""The chat's look: one palette for light and one for dark (Gradio puts class "dark" on <body>), every text
colour at least 4.5:1 against the background it sits on (WCAG AA; checked by axe-core in tests/test_look.py),
and the client-side glue for the light/dark toggle (default: the system's preference, as Gradio reads it).

Contrast of the pairs used (text on background): light #1f2937/#4b5563/#1d4ed8/#92400e/#b91c1c on white
15.3/7.6/6.7/7.1/6.5:1; the primary button's white on #c2410c 5.2:1; highlight #1f2937 on #fef3c7 13.6:1, on #fde047 12.4:1. Dark #f3f4f6/#d1d5db/#93c5fd/
#fbbf24/#fca5a5 on #0b0f19 17.7/13.4/10.9/11.6/10.1:1; highlight #fef3c7 on #422006 13.4:1, #ffffff on #78350f 10.1:1.
"""
from __future__ import annotations

PALETTE = """
:root, body {
  --qa-text: #1f2937; --qa-muted: #4b5563; --qa-accent: #1d4ed8; --qa-warn: #92400e; --qa-error: #b91c1c;
  --qa-hl-bg: #fef3c7; --qa-hl-text: #1f2937; --qa-focus-bg: #fde047; --qa-focus-text: #1f2937;
  --qa-focus-line: #a16207; --qa-badge-bg: #fde68a; --qa-badge-text: #78350f;
  --body-text-color-subdued: #4b5563; --input-placeholder-color: #4b5563; --block-info-text-color: #4b5563;
  --button-primary-background-fill: #c2410c; --button-primary-background-fill-hover: #9a3412;
  --button-primary-text-color: #ffffff; --button-primary-text-color-hover: #ffffff;
}
body.dark, .dark {
  --qa-text: #f3f4f6; --qa-muted: #d1d5db; --qa-accent: #93c5fd; --qa-warn: #fbbf24; --qa-error: #fca5a5;
  --qa-hl-bg: #422006; --qa-hl-text: #fef3c7; --qa-focus-bg: #78350f; --qa-focus-text: #ffffff;
  --qa-focus-line: #facc15; --qa-badge-bg: #78350f; --qa-badge-text: #fef3c7;
  --body-text-color-subdued: #d1d5db; --input-placeholder-color: #9ca3af; --block-info-text-color: #d1d5db;
  --button-primary-background-fill: #c2410c; --button-primary-background-fill-hover: #9a3412;
  --button-primary-text-color: #ffffff; --button-primary-text-color-hover: #ffffff;
}
"""

CSS = PALETTE + """
.qa-msg.qa-refusal { color: var(--qa-text); font-style: italic; border-left: 4px solid var(--qa-warn);
  padding-left: .6em; }
.qa-badge { font-style: normal; font-size: .75em; font-weight: 600; background: var(--qa-badge-bg);
  color: var(--qa-badge-text); border-radius: 4px; padding: 0 .4em; margin-right: .3em; }
.qa-msg.qa-error, .qa-error { color: var(--qa-error); }
.qa-cite { color: var(--qa-accent); font-weight: 600; }
.qa-meta { font-size: .8em; color: var(--qa-muted); margin-top: .4em; }
.qa-cursor { opacity: .7; }
.qa-sources ol { list-style: none; padding: 0; margin: .3em 0; }
.qa-head { font-weight: 600; margin-bottom: .3em; color: var(--qa-text); }
.qa-closest .qa-head { color: var(--qa-warn); }
button.qa-src { display: block; width: 100%; text-align: left; border: 1px solid var(--border-color-primary);
  border-radius: 6px; padding: .4em .6em; margin: .3em 0; background: var(--background-fill-secondary);
  cursor: pointer; color: var(--qa-text); font: inherit; }
button.qa-src:hover, button.qa-src:focus { border-color: var(--qa-accent); }
.qa-n { font-weight: 700; color: var(--qa-accent); }
.qa-name { font-size: .85em; color: var(--qa-muted); }
/* A passage's own line breaks are kept: a page's headline is a line of its own, not run into the sentence after it. */
.qa-passage { display: block; font-size: .85em; margin-top: .2em; white-space: pre-line; }
.qa-doc { color: var(--qa-text); }
.qa-doc-title { font-weight: 600; margin-bottom: .3em; }
.qa-doc-body { white-space: pre-wrap; max-height: 420px; overflow: auto; font-size: .9em; line-height: 1.5; }
mark.qa-hl { background: var(--qa-hl-bg); color: var(--qa-hl-text); }
mark.qa-focus { background: var(--qa-focus-bg); color: var(--qa-focus-text); outline: 2px solid var(--qa-focus-line); }
.qa-mark-label { font-weight: 700; margin-right: .2em; }
.qa-title { font-size: 1.3em; font-weight: 700; margin: 0 0 .2em; color: var(--qa-text); }
.qa-empty, .qa-note, .qa-corpus, .qa-count { color: var(--qa-muted); font-size: .9em; }
.qa-count.qa-over { color: var(--qa-error); font-weight: 600; }
/* Gradio's dark theme sets its own orange (#ea580c, 3.6:1 with white) more specifically than the variables. */
button.primary, .dark button.primary { background: #c2410c !important; color: #ffffff !important; }
/* Stop is an ordinary button while nothing runs, and red (white on #b91c1c is 6.5:1; Gradio's stop red #ef4444
   gives 3.8:1) while an answer is written or waits. */
.gradio-container:has(#qa-chat .qa-streaming, #qa-chat .qa-queued) #qa-stop {
  background: #b91c1c !important; color: #ffffff !important; border-color: #b91c1c !important; }
button.primary:hover, .dark button.primary:hover { background: #9a3412 !important; }
/* The chat grows with its messages (ui.build_app: no fixed height); on a phone it stops at about half the screen,
   so the question box stays in view under it. */
@media (max-width: 640px) {
  #qa-chat { max-height: 52vh !important; }
  .qa-corpus-more { display: none; }
  .qa-title { font-size: 1.1em; }
}
/* Example questions wrap instead of being cut ("...in the firs..."). */
#qa-examples button, #qa-examples button * { white-space: normal !important; text-overflow: clip !important;
  overflow: visible !important; max-width: 100%; text-align: left; }
/* Thumbs only under answers: a stopped, failed, queued or unfinished bubble has nothing to rate. */
#qa-chat .message-row:has(.qa-stopped, .qa-error, .qa-queued, .qa-streaming) + .message-buttons { display: none; }
/* The note under the question box takes no room until it says something. */
#qa-count:has(.qa-count:empty) { display: none; }
#qa-chat .placeholder { padding: .6em .8em; }
.qa-voted { font-size: .8em; color: var(--qa-muted); margin-top: .3em; }
.qa-rewrite { overflow-wrap: anywhere; }
/* A long question scrolls inside the box instead of growing it past the screen. */
#qa-input textarea { max-height: 9em; overflow-y: auto !important; }
#qa-input textarea::placeholder { text-overflow: ellipsis; }
/* Clickable citations, stages, queue and copy (the chat core) */
.qa-cite-link { cursor: pointer; position: relative; text-decoration: underline dotted; }
/* A marker carries its sentence hidden; the page shows it in a panel under the answer (ui.CITE_JS), in the flow
   of the bubble: it covers nothing and is never wider than the bubble. */
.qa-cite-link .qa-preview { display: none !important; }
.qa-cite-panel { display: block; margin: .4em 0 .2em; padding: .35em .6em; font-size: .85em; line-height: 1.4;
  color: var(--qa-text); border-left: 3px solid var(--qa-accent); background: var(--background-fill-secondary);
  border-radius: 4px; overflow-wrap: anywhere; max-width: 100%; box-sizing: border-box; }
.qa-cite-panel[hidden] { display: none !important; }
.qa-panel-text { white-space: pre-line; }
.qa-panel-n { font-weight: 700; color: var(--qa-accent); }
.qa-panel-src { display: block; margin-top: .2em; color: var(--qa-muted); font-size: .9em; }
.qa-cite-link:focus-visible { outline: 2px solid var(--qa-accent); outline-offset: 1px; border-radius: 2px; }
.qa-stage { color: var(--qa-muted); font-style: italic; margin-right: .3em; }
.qa-msg.qa-queued, .qa-msg.qa-stopped { color: var(--qa-muted); }
.qa-tools { margin-top: .3em; }
button.qa-copy { font-size: .75em; border: 1px solid var(--border-color-primary); border-radius: 4px;
  padding: 0 .5em; background: transparent; color: inherit; cursor: pointer; }
.qa-copytext { display: none; }
"""

# The toggle flips Gradio's own dark class and remembers the choice; with no choice stored, Gradio's default
# (the system's prefers-color-scheme) stands.
TOGGLE_JS = """() => { const dark = document.body.classList.toggle('dark');
  try { localStorage.setItem('qa-theme', dark ? 'dark' : 'light'); } catch (e) {} }"""
RESTORE_JS = """() => { let t = null; try { t = localStorage.getItem('qa-theme'); } catch (e) {}
  if (t === 'dark') document.body.classList.add('dark'); else if (t === 'light') document.body.classList.remove('dark'); }"""
