"""How much of a question set's evidence the HTML extraction keeps: trafilatura's fast mode (what formats_html.py
runs) against its full mode (which checks its choice of main text against readability and jusText).

    .venv/bin/python benchmarks/extraction_recall.py eval/fourteenth_qa.jsonl:eval/fourteenth_corpus [...]

Prints, per set: the answerable questions whose evidence is on an HTML page, how many of those evidence strings
each mode's text holds (whitespace and case folded), the text each mode keeps, and the seconds each took (with
the load). No model is run.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import trafilatura

OPTIONS = dict(output_format="txt", include_comments=False, include_tables=True, favor_precision=True,
               deduplicate=False, with_metadata=False)


def _fold(text: str) -> str:
    return " ".join(text.split()).lower()


def measure(questions: Path, corpus: Path) -> dict:
    pages, seconds = {}, {"fast": 0.0, "full": 0.0}
    for f in sorted(corpus.glob("*.htm*")):
        data = f.read_bytes()
        texts = []
        for mode, fast in (("fast", True), ("full", False)):
            t = time.perf_counter()
            texts.append(_fold(trafilatura.extract(data, fast=fast, **OPTIONS) or ""))
            seconds[mode] += time.perf_counter() - t
        pages[f.name] = texts
    rows = [json.loads(x) for x in questions.read_text(encoding="utf-8").splitlines() if x.strip()]
    asked = [q for q in rows if q.get("answerable", True) and q.get("evidence") and q.get("source") in pages]
    kept = [sum(_fold(q["evidence"]) in pages[q["source"]][i] for q in asked) for i in (0, 1)]
    return {"set": questions.stem, "pages": len(pages), "evidence": len(asked), "kept_fast": kept[0], "kept_full": kept[1],
            "chars_fast": sum(len(t[0]) for t in pages.values()), "chars_full": sum(len(t[1]) for t in pages.values()),
            "seconds_fast": round(seconds["fast"], 2), "seconds_full": round(seconds["full"], 2),
            "load": os.getloadavg()[0]}


def main(argv: list[str]) -> int:
    for spec in argv:
        questions, _, corpus = spec.partition(":")
        print(json.dumps(measure(Path(questions), Path(corpus))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
