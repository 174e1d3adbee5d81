"""Latency of a first question about a document and of further questions about the same document.

    .venv/bin/python benchmarks/doc_latency.py QUESTIONS.jsonl --corpus DIR [--docs 8] [--saved]

The questions of a set that name their `source` are grouped by document; for each of the first --docs documents
with at least two questions, the first is asked (the reader reads that document, or its passages, for the first
time) and then the others (a document read whole is held by the reader: they read only themselves). Without
--saved the reader keeps no saved states (llm_state_mb=0), so every first question is a cold read; with it, the
states saved by earlier runs are loaded as a restarted server would. Prints p50/p95 of each kind, the time to the
first progress stage ("reading"), and the machine's load before and after: compare runs on a quiet machine only.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import defaultdict

from qa_bot import QABot, Settings
from qa_bot.types import Stage


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--docs", type=int, default=8)
    ap.add_argument("--saved", action="store_true", help="load saved reader states as a restarted server would")
    args = ap.parse_args(argv)
    by_doc: dict[str, list[str]] = defaultdict(list)
    for line in open(args.questions, encoding="utf-8"):
        q = json.loads(line)
        if q.get("source"):
            by_doc[q["source"]].append(q["question"])
    docs = [d for d, qs in by_doc.items() if len(qs) >= 2][: args.docs]
    extra = {} if args.saved else {"llm_state_mb": 0}
    bot = QABot(args.corpus, settings=Settings.from_env(corpus_dir=args.corpus, **extra))
    load0 = os.getloadavg()
    bot.warm_up()
    first, further, progress, modes = [], [], [], defaultdict(int)
    for d in docs:
        for i, question in enumerate(by_doc[d]):
            t0 = time.perf_counter()
            seen = None
            for item in bot.ask_stream(question):
                if seen is None and isinstance(item, Stage):
                    seen = time.perf_counter() - t0
            dt = time.perf_counter() - t0
            (first if i == 0 else further).append(dt)
            progress.append(seen if seen is not None else dt)
            p = bot.prepare(question, (), None)
            modes["whole document" if p.whole else "passages" if p.ordered else "sentences"] += 1
    bot.close()
    out = {
        "documents": len(docs), "first_n": len(first), "further_n": len(further),
        "first_p50_s": round(statistics.median(first), 2), "first_p95_s": round(pct(first, 0.95), 2),
        "further_p50_s": round(statistics.median(further), 2), "further_p95_s": round(pct(further, 0.95), 2),
        "progress_p50_s": round(statistics.median(progress), 3), "progress_max_s": round(max(progress), 3),
        "modes": dict(modes), "saved_states": args.saved,
        "reader_tokens": bot.settings.reader_tokens, "load_before": load0, "load_after": os.getloadavg(),
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
