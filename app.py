"""Serve the chat: `python app.py [--host H] [--port P] [--corpus DIR] [--watch]` (defaults: 127.0.0.1:7860, docs_corpus/).

Host and port also follow Gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; the flags win. The same
server answers the OpenAI-compatible API under /v1 (qa_bot/api.py; keys: QA_BOT_API_KEYS) and the health checks
/healthz and /readyz (qa_bot/health.py). --watch follows the corpus folder and re-indexes what changes in it
(qa_bot/watch.py) while questions go on being answered.
"""
from __future__ import annotations

import argparse
import logging
import os
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860))
    p.add_argument("--corpus", default=None, help="folder of .txt/.md articles (default: docs_corpus/)")
    p.add_argument("--no-warmup", action="store_true", help="load the models on the first question, not at start")
    p.add_argument("--watch", action="store_true", help="follow the corpus folder: re-index documents as they are "
                   "added, changed or removed, while answering")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from qa_bot import QABot, QABotError  # QABot loads nothing heavy until the first question

    bot = QABot(args.corpus)  # settings from QA_BOT_* environment variables
    from qa_bot.ui import build_app, launch  # gradio first (~3 s): imports share one GIL, so the page opens sooner

    if not args.no_warmup:  # load index, embedder and LLM while the page is already up, so question 1 is fast
        threading.Thread(target=_warm_up, args=(bot,), daemon=True).start()
    watcher = None
    if args.watch:
        from qa_bot.watch import CorpusWatcher

        watcher = CorpusWatcher(bot).start()
    try:
        demo = build_app(bot, watcher=watcher)  # reads QA_BOT_API_KEYS: a malformed key or key file stops here
    except QABotError as e:
        raise SystemExit(f"app.py: {e}") from None
    try:
        launch(demo, host=args.host, port=args.port)
    finally:
        if watcher is not None:
            watcher.stop()
        bot.close()


def _warm_up(bot) -> None:
    t = time.perf_counter()
    try:
        bot.warm_up()
    except Exception as e:  # the first question will report the problem to the user properly
        logging.getLogger("app").warning("warm-up failed: %s", e)
    else:
        logging.getLogger("app").info("models loaded in %.1f s", time.perf_counter() - t)


if __name__ == "__main__":
    main()
