"""The `qa-bot` command: the edge where library errors become one-line messages and exit codes.

    qa-bot ask "QUESTION" [--corpus DIR] [--json] [--source NAME] [--since DATE] [--until DATE]
                                                      answer with numbered sources, from the filtered documents
    qa-bot index [--corpus DIR] [--json] [--watch]    (re)build the index; print chunk, reused and embedded counts;
                                                      --watch: then re-index the documents that change, until Ctrl-C
    qa-bot docs [--corpus DIR] [--json]               list the documents: title, date, chunks; and skipped files
    qa-bot eval QUESTIONS.jsonl [--corpus DIR] [--out DIR] [--min-accuracy X] ...
    qa-bot feedback export [--format csv|jsonl] [--out FILE]    the chat's thumbs up/down, with comments
    qa-bot feedback summary                                     counts of votes
Exit codes: 0 ok, 1 failure (or an eval threshold missed), 2 bad input (a bad question, a filter that is malformed
or matches no document, or a question file that is missing or not in the format of docs/question_format.md).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time

from .errors import InvalidQuestion, QABotError, QuestionFileError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa-bot", description="Answer questions about a folder of articles, with citations.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    corpus_help = "folder of .txt/.md/.rst/.html/.pdf/.docx/.epub/.odt documents (default: docs_corpus/)"
    ask.add_argument("--corpus", help=corpus_help)
    ask.add_argument("--json", action="store_true", help="print one JSON object with the Answer fields")
    ask.add_argument("--source", metavar="NAME", help="only this document: file name, path, glob, publisher or site")
    ask.add_argument("--since", metavar="YYYY-MM-DD", help="only documents published on or after this date "
                     "(documents without a date are left out)")
    ask.add_argument("--until", metavar="YYYY-MM-DD", help="only documents published on or before this date "
                     "(documents without a date are left out)")
    idx = sub.add_parser("index", help="(re)build the index of a corpus folder")
    idx.add_argument("--corpus", help=corpus_help)
    idx.add_argument("--watch", action="store_true", help="then follow the folder: re-index the documents that are "
                     "added, changed or removed (only those), until Ctrl-C")
    idx.add_argument("--json", action="store_true", help="progress and the result as JSON lines on standard output")
    docs = sub.add_parser("docs", help="list the documents of a corpus folder with titles, dates and chunk counts")
    docs.add_argument("--corpus", help=corpus_help)
    docs.add_argument("--json", action="store_true", help="print one JSON object: documents and skipped files")
    from .eval import add_eval_arguments

    add_eval_arguments(sub.add_parser("eval", help="score the bot on a JSONL question file"))
    fb = sub.add_parser("feedback", help="export or summarise the chat's feedback (Settings.feedback_db)")
    fb_sub = fb.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    exp = fb_sub.add_parser("export", help="every vote with its question, answer, citations and comment")
    exp.add_argument("--format", choices=("csv", "jsonl"), default="jsonl",
                     help="jsonl (default) or csv; in csv, a text cell that starts with = + - @, a tab or a carriage "
                          "return gets a leading ' so that a spreadsheet shows it as text, never runs it as a "
                          "formula (OWASP's rule against CSV injection)")
    exp.add_argument("--out", help="file to write (default: standard output)")
    exp.add_argument("--db", help="feedback database (default: QA_BOT_FEEDBACK_DB or the cache folder)")
    summ = fb_sub.add_parser("summary", help="counts of votes up and down")
    summ.add_argument("--db", help="feedback database (default: QA_BOT_FEEDBACK_DB or the cache folder)")
    return p


def _feedback(args) -> int:
    from .feedback import FeedbackError, FeedbackStore, export
    from .settings import Settings

    store = FeedbackStore(args.db or Settings.from_env().feedback_db)
    if args.feedback_command == "summary":
        s = store.summary()
        share = "n/a" if s["helpful_share"] is None else f"{s['helpful_share']:.0%}"
        _out(f"feedback: {s['n']} votes, {s['up']} up, {s['down']} down ({share} helpful), "
             f"{s['with_comment']} with a comment ({store.path})")
        return 0
    rows = store.rows()
    text = export(rows, args.format)
    if not args.out:
        sys.stdout.write(terminal_safe(text) if sys.stdout.isatty() else text)
        return 0
    try:
        with open(args.out, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise FeedbackError(f"Cannot write {args.out}: {exc.strerror or exc}.") from None
    _out(f"wrote {len(rows)} feedback rows to {args.out}", file=sys.stderr)
    return 0


# Terminal escape sequences (CSI "ESC [ ... m", OSC "ESC ] ... BEL" such as a clipboard write, other ESC pairs)
# and every other control or bidi character: a document or a file name must not drive the user's terminal.
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P^_X][^\x1b]*(?:\x1b\\)?|\x1b.?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# The same characters, escaped in --json output (JSON escapes C0 itself; C1 and bidi ones it leaves raw).
_JSON_RAW = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def terminal_safe(text: object) -> str:
    """text with escape sequences and control characters removed (newlines and tabs kept)."""
    return _CONTROL.sub("", _ESCAPE.sub("", str(text)))


def _out(*parts: object, file=None) -> None:
    print(*(terminal_safe(p) for p in parts), file=file)


def _print_answer(answer) -> None:
    _out(answer.text)
    if answer.standalone_question:
        _out(f"(searched for: {answer.standalone_question})")
    if answer.citations:
        _out("\nSources:")
        for c in answer.citations:
            _out(f"[{c.n}] {cited_document(c)} [{c.start}:{c.end}]: {' '.join(c.text.split())}")
    elif answer.retrieved:
        _out("\nClosest passages:")
        for h in answer.retrieved[:3]:
            _out(f"- {h.chunk.source} [{h.chunk.start}:{h.chunk.end}] (score {h.score:.2f}): {' '.join(h.chunk.text.split())[:160]}")


def cited_document(c) -> str:
    """"file.pdf, p. 3 — Title (2023-05-12)": the file, page, title and date of a citation."""
    name = f"{c.source}, p. {c.page}" if getattr(c, "page", None) else c.source
    about = " ".join(x for x in (c.title, f"({c.date})" if c.date else "") if x)
    return f"{name} — {about}" if about else name


def json_safe(obj) -> str:
    """obj as indented JSON in which no character can drive a terminal (all are escaped, as \\uXXXX)."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class _SafeFormatter(logging.Formatter):
    def format(self, record):
        return terminal_safe(super().format(record))


def _ask(args) -> int:
    from .question import normalise
    from .pipeline import QABot
    from .settings import Settings

    settings = Settings.from_env()
    question, _ = normalise(args.question, None, settings)  # reject bad input before loading any model
    with QABot(args.corpus, settings=settings) as bot:
        answer = bot.ask(question, source=args.source, since=args.since, until=args.until)
        for s in bot.skipped:
            logging.getLogger("qa_bot").debug("skipped %s", s.reason)
    if args.json:
        print(json_safe(answer.to_dict()))
    else:
        _print_answer(answer)
    return 0


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    m, sec = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


class _Progress:
    """progress(IndexProgress): on a terminal one status line on stderr, rewritten in place (documents and chunks
    done, each per second, and the time left); with --json one JSON object a line on stdout (a step at most every
    JSON_EVERY seconds, and the last); otherwise nothing (a log gets the final summary line alone)."""

    JSON_EVERY = 1.0

    def __init__(self, as_json: bool = False, stream=None):
        self.as_json = as_json
        self.stream = stream or sys.stderr
        self.live = not as_json and self.stream.isatty()
        self.last_json = float("-inf")
        self.last_key: tuple | None = None  # a step reported twice (the end of the last document, then the end) is printed once
        self.width = 0

    def __call__(self, p) -> None:
        if self.as_json:
            now, key = time.monotonic(), (p.done, p.total, p.docs_done, p.docs_total, p.estimated)
            if key != self.last_key and (now - self.last_json >= self.JSON_EVERY or (p.done == p.total and not p.estimated)):
                self.last_json, self.last_key = now, key
                print(json.dumps({"event": "progress", **p.as_dict()}), flush=True)
        elif self.live:
            total = f"~{p.total:,}" if p.estimated else f"{p.total:,}"
            line = (f"embedding: {p.done:,}/{total} chunks ({p.chunks_per_s:.0f}/s), {p.docs_done:,}/{p.docs_total:,} "
                    f"documents ({p.docs_per_s:.1f}/s), {p.reused:,} reused, ETA {_clock(p.eta_s)}")
            self.stream.write("\r" + line.ljust(self.width))
            self.stream.flush()
            self.width = len(line)

    def close(self) -> None:
        if self.live and self.width:
            self.stream.write("\n")
            self.stream.flush()


def _index(args) -> int:
    from .pipeline import QABot

    bot = QABot(args.corpus)
    t = time.perf_counter()
    progress = _Progress(as_json=args.json)
    try:
        index = bot.build_index(force=True, progress=progress)
    finally:
        progress.close()
    info = index.info
    took = time.perf_counter() - t
    embedded = info.get("n_embedded") or 0
    summary = {"event": "done", "chunks": len(index.chunks), "documents": len(bot.documents),
               "reused": len(index.chunks) - embedded, "embedded": embedded, "seconds": round(took, 1),
               "embed_s": round(info.get("embed_s") or 0, 1),
               "chunks_per_s": round(embedded / info["embed_s"], 1) if embedded and info.get("embed_s") else None,
               "embed_precision": info.get("embed_precision", "fp32"), "index_type": info.get("index_type", "?"),
               "skipped": len(bot.skipped)}
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        rate = f", {summary['chunks_per_s']:.0f} chunks/s" if summary["chunks_per_s"] else ""
        _out(f"indexed {len(index.chunks)} chunks from {len(bot.documents)} documents in {took:.1f} s "
             f"({summary['reused']} reused, {embedded} embedded{rate}, {summary['embed_precision']}, "
             f"index {summary['index_type']})")
    # Skipped files were already named by their warnings, once each.
    if not getattr(args, "watch", False):
        return 0
    from .watch import CorpusWatcher

    watcher = CorpusWatcher(bot, on_reload=lambda done: _out(done.summary()))
    _out(f"following {bot.settings.corpus_dir} for changes (Ctrl-C to stop)")
    try:
        watcher.run()
    except KeyboardInterrupt:  # how a watch is ended: not a failure
        pass
    return 0


def _docs(args) -> int:
    from .pipeline import QABot
    from .sanitize import visible

    bot = QABot(args.corpus)
    listed = bot.catalog()
    skipped = [{"source": s.source, "reason": s.reason} for s in bot.skipped]
    if args.json:
        print(json_safe({"documents": listed, "skipped": skipped}))
        return 0
    # File names and titles escaped (sanitize.visible): a newline in a name would print a forged row (issue 45, G20).
    for d in listed:
        page = f", {d['pages']} pages" if d["pages"] else ""
        _out(f"{visible(d['source'])}  {d['date'] or '(no date)'}  {d['chunks']} chunks{page}  {visible(d['title'])}")
    _out(f"{len(listed)} documents, {sum(d['chunks'] for d in listed)} chunks")
    for s in skipped:
        _out(f"skipped {visible(s['reason'])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig, with warnings made terminal-safe (they name files)
        handler = logging.StreamHandler()
        handler.setFormatter(_SafeFormatter("qa-bot: %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        if args.command == "ask":
            return _ask(args)
        if args.command == "index":
            return _index(args)
        if args.command == "docs":
            return _docs(args)
        if args.command == "feedback":
            return _feedback(args)
        from .eval import cli_eval

        return cli_eval(args)
    except (InvalidQuestion, QuestionFileError) as exc:  # bad input: exit 2
        _out(f"qa-bot: error: {exc}", file=sys.stderr)
        return 2
    except QABotError as exc:
        _out(f"qa-bot: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for a user; QA_BOT_DEBUG=1 shows it
        if os.environ.get("QA_BOT_DEBUG"):
            raise
        _out(f"qa-bot: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
