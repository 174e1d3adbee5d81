"""The Gradio chat: streamed answers, numbered sources, and the cited span highlighted in the full text.

This module builds the page and serves it (build_app, launch); its parts each have their module: the HTML
(qa_bot.ui_render, pure functions), the page's scripts (qa_bot.ui_script) and the event handlers with their
per-session state (qa_bot.ui_handlers). Their public names are importable from here too.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # set before gradio is imported: no telemetry calls

import contextlib
import logging
from typing import Any, Sequence

import gradio as gr

from .chat import Conversation
from .ingest import DOC_SUFFIXES
from .sanitize import visible
from .settings import REPO_ROOT, Settings
from .theme import CSS, RESTORE_JS, TOGGLE_JS
from .ui_handlers import (Handlers, added_documents, bot_documents, check_ask_inputs, check_filter_inputs,
                          corpus_titles, last_answered, record_feedback, remove_added, voted_turn)
from .ui_render import (EMPTY_DOC, REWRITE_SHOWN_CHARS, esc, format_ms, format_timings, render_answer_text,
                        render_chat, render_corpus, render_counter, render_document, render_error, render_message,
                        render_sources, render_streaming, render_turn, render_user, shorten, source_items,
                        stage_label)
from .ui_script import CITE_JS, COUNTER_JS, LABEL_JS, SCROLL_JS, SOURCES_JS, upload_precheck_js
from .web import UPLOAD_PATH, HostGuard, RequestGuard, UploadStore, upload_route

# What qa_bot.ui offered before its parts had modules of their own (app.py, tests, scripts import from here).
__all__ = [
    "Blocks", "build_app", "launch", "EXAMPLES", "EXAMPLE_CHARS", "MODEL", "UPLOADS", "WATCH_REFRESH_SECONDS",
    "Handlers", "added_documents", "bot_documents", "check_ask_inputs", "check_filter_inputs", "corpus_titles",
    "last_answered", "record_feedback", "remove_added", "voted_turn",
    "EMPTY_DOC", "REWRITE_SHOWN_CHARS", "esc", "format_ms", "format_timings", "render_answer_text", "render_chat",
    "render_corpus", "render_counter", "render_document", "render_error", "render_message", "render_sources",
    "render_streaming", "render_turn", "render_user", "shorten", "source_items", "stage_label",
    "CITE_JS", "COUNTER_JS", "LABEL_JS", "SCROLL_JS", "SOURCES_JS", "upload_precheck_js",
]

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
MODEL = "model"  # concurrency group of every event that touches the models (llama.cpp is not thread-safe)
UPLOADS = "uploads"  # concurrency group of adding documents: slow, and kept out of the answers' way
# How often an open page asks whether a watched corpus changed (app.py --watch): a request that returns nothing
# unless it did, so the header is at most this stale.
WATCH_REFRESH_SECONDS = 5.0


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
        errors = exc.errors()
        msg = errors[0].get("msg", "invalid value") if errors else "invalid value"
        return f"{where} is malformed: {str(msg).rstrip('.')}."
    return "an input is malformed; see the API page (footer: Use via API) for the expected shapes."


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

        # Every event that runs the models shares their one slot: concurrency_limit=1, concurrency_id=MODEL.
        # /chat: the stateless API form of a chat turn (question and chat in, bubbles and sources out).
        api_chat = gr.Button(visible=False)
        api_chat.click(h.respond, [msg, chat, turns, session], [msg, chat, turns, items, sources, doc],
                       api_name="chat", api_visibility="undocumented", concurrency_limit=1, concurrency_id=MODEL)
        # The browser chat: a question is added at once (outside the queue, so one sent mid-answer shows as
        # queued and the box is free again), then `run` answers the queued questions in order.
        run_io = dict(fn=h.run, inputs=[conv, session, f_source, f_since, f_until],
                      outputs=[chat, items, sources, doc, saved],
                      show_progress="hidden", api_visibility="private", concurrency_limit=1, concurrency_id=MODEL)
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
        gr.api(h.ask, api_name="ask", concurrency_limit=1, concurrency_id=MODEL)
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
