"""Health checks for a load balancer or an orchestrator, served beside the chat and the API (qa_bot.ui.launch):

    GET /healthz   200 {"status": "ok"} while the process serves HTTP (liveness: restart it when this fails)
    GET /readyz    200 when the index is loaded and the reader warm, else 503 (readiness: send it questions
                   only when 200); both with a JSON body: {"ready", "index_loaded", "reader_warm", "documents",
                   "chunks", "index_version", "corpus_version", "corpus_changed"}

Both are unauthenticated (they say nothing about the documents but their count and a hash) and cheap: they read
what the bot already holds (QABot.readiness) and never load the corpus, the index or a model, so a probe cannot
start the work it is meant to wait for. HEAD works too.
"""
from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HEADERS = {"Cache-Control": "no-store"}


def readiness(bot, watcher=None) -> dict:
    """The /readyz body for `bot` (anything with readiness(); a bot without it reports itself ready once it
    answers at all)."""
    own = getattr(bot, "readiness", None)
    body = dict(own()) if own is not None else {"ready": True, "index_loaded": None, "reader_warm": None,
                                                "documents": None, "chunks": None, "index_version": None,
                                                "corpus_version": None}
    changed = getattr(watcher, "last_changed", 0) if watcher is not None else 0
    body["corpus_changed"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(changed)) if changed else None
    return body


def health_routes(bot, watcher=None) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=HEADERS)

    async def readyz(request: Request) -> Response:
        body = readiness(bot, watcher)
        return JSONResponse(body, status_code=200 if body.get("ready") else 503, headers=HEADERS)

    return [Route("/healthz", healthz, methods=["GET", "HEAD"]), Route("/readyz", readyz, methods=["GET", "HEAD"])]
