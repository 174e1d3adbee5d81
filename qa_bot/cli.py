"""The `qa-bot` command: the edge where library errors become one-line messages and exit codes.

    qa-bot ask "QUESTION" [--corpus DIR] [--json]     answer with numbered sources
    qa-bot index [--corpus DIR]                       (re)build the index; print chunk count and time
    qa-bot eval QUESTIONS.jsonl [--corpus DIR] [--out DIR] [--min-accuracy X] ...
Exit codes: 0 ok, 1 failure (or an eval threshold missed), 2 bad input (a bad question, or a question file that
is missing or not in the format of docs/question_format.md).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from .errors import InvalidQuestion, QABotError, QuestionFileError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa-bot", description="Answer questions about a folder of articles, with citations.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--corpus", help="folder of .txt/.md documents (default: docs_corpus/)")
    ask.add_argument("--json", action="store_true", help="print one JSON object with the Answer fields")
    idx = sub.add_parser("index", help="(re)build the index of a corpus folder")
    idx.add_argument("--corpus", help="folder of .txt/.md documents (default: docs_corpus/)")
    from .eval import add_eval_arguments

    add_eval_arguments(sub.add_parser("eval", help="score the bot on a JSONL question file"))
    return p


def _print_answer(answer) -> None:
    print(answer.text)
    if answer.standalone_question:
        print(f"(searched for: {answer.standalone_question})")
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            print(f"[{c.n}] {c.source} [{c.start}:{c.end}]: {' '.join(c.text.split())}")
    elif answer.retrieved:
        print("\nClosest passages:")
        for h in answer.retrieved[:3]:
            print(f"- {h.chunk.source} [{h.chunk.start}:{h.chunk.end}] (score {h.score:.2f}): {' '.join(h.chunk.text.split())[:160]}")


def _ask(args) -> int:
    from .question import clean_question
    from .pipeline import QABot
    from .settings import Settings

    settings = Settings.from_env()
    clean_question(args.question, settings.max_question_chars)  # reject bad input before loading any model
    with QABot(args.corpus, settings=settings) as bot:
        answer = bot.ask(args.question)
        for s in bot.skipped:
            logging.getLogger("qa_bot").debug("skipped %s", s.reason)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))
    else:
        _print_answer(answer)
    return 0


def _index(args) -> int:
    from .pipeline import QABot

    bot = QABot(args.corpus)
    t = time.perf_counter()
    index = bot.build_index(force=True)
    info = index.info
    print(f"indexed {len(index.chunks)} chunks from {len(bot.documents)} documents in {time.perf_counter() - t:.1f} s "
          f"({info.get('n_embedded', 0)} embedded, index {info.get('index_type', '?')})")
    for s in bot.skipped:
        print(f"skipped: {s.reason}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="qa-bot: %(levelname)s: %(message)s")
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
        from .eval import cli_eval

        return cli_eval(args)
    except (InvalidQuestion, QuestionFileError) as exc:  # bad input: exit 2
        print(f"qa-bot: error: {exc}", file=sys.stderr)
        return 2
    except QABotError as exc:
        print(f"qa-bot: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for a user; QA_BOT_DEBUG=1 shows it
        if os.environ.get("QA_BOT_DEBUG"):
            raise
        print(f"qa-bot: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
