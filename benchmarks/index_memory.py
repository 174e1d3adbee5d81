"""Where indexing's peak memory goes: RSS sampled every 20 ms while the real bot indexes an archive, split by stage.

    .venv/bin/python benchmarks/index_memory.py [--docs 200] [--seed 0] [--tracemalloc]

The archive is benchmarks/archive.py's (written once to benchmarks/results/archive-<docs>-<seed>/corpus/, reused).
QA_BOT_EMBED_PRECISION picks the precision as for the bot. Stages: imports, documents read, chunked + model
loaded (the first progress call), embedding (to the last progress call), FAISS index + atomic write, BM25 + one
query. For each: RSS at its end and the highest RSS sampled during it. --tracemalloc adds the peak of Python
objects (tracemalloc; slower) and its largest allocation sites. Writes benchmarks/results/index_memory-<docs>-<precision>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class Sampler(threading.Thread):
    """RSS every `every` seconds; mark(name) closes a stage (its end RSS and the highest sample since the last)."""

    def __init__(self, every: float = 0.02):
        super().__init__(daemon=True)
        self.every, self.peak, self.stop, self.stages = every, 0.0, threading.Event(), []
        self.t0 = time.perf_counter()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.every)

    def mark(self, name: str) -> None:
        now = rss_mb()
        self.stages.append({"stage": name, "t_s": round(time.perf_counter() - self.t0, 1), "end_mb": round(now),
                            "peak_mb": round(max(self.peak, now))})
        self.peak = now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()

    corpus = args.out / f"archive-{args.docs}-{args.seed}" / "corpus"
    if not corpus.is_dir():
        import multiprocessing

        from archive import make_archive

        child = multiprocessing.get_context("spawn").Process(target=make_archive, args=(corpus, args.docs, args.seed))
        child.start()
        child.join()
    load_start = os.getloadavg()
    sampler = Sampler()
    sampler.start()
    sampler.mark("start")
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(8)
    from qa_bot.pipeline import QABot
    from qa_bot.settings import Settings

    import torch  # noqa: F401  (imported by the embedder anyway: counted here, not in a later stage)

    sampler.mark("imports")
    cache = Path(tempfile.mkdtemp(prefix="qa_memory_"))
    bot = QABot(settings=Settings.from_env().replace(corpus_dir=corpus, cache_dir=cache))
    docs = bot.documents
    sampler.mark("documents read")
    seen = {"first": False, "total": 0}

    def progress(p) -> None:  # an IndexProgress
        if not seen["first"]:
            seen["first"] = True
            sampler.mark("chunked + model loaded")
        seen["total"] = p.total

    t0 = time.perf_counter()
    index = bot.build_index(force=True, progress=progress)
    index_s = time.perf_counter() - t0
    # build_index reports embedding's end only by returning: the FAISS stage is timed inside, RSS is one sample
    sampler.mark("embedding + FAISS + write")
    bot.retriever.search("What about the archive items and their release notes?")
    sampler.mark("BM25 + one query")
    sampler.stop.set()
    top = []
    py_peak = None
    if args.tracemalloc:
        current, py_peak = tracemalloc.get_traced_memory()
        snap = tracemalloc.take_snapshot()
        top = [f"{s.size / 1e6:.1f} MB {s.traceback[0]}" for s in snap.statistics("lineno")[:12]]
        py_peak = round(py_peak / 1e6)
    info = index.info
    result = {
        "docs": len(docs), "chunks": len(index.chunks), "embed_precision": info.get("embed_precision"),
        "index_s": round(index_s, 1), "embed_s": round(info.get("embed_s", 0), 1), "faiss_s": round(info.get("index_s", 0), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6),
        "python_peak_mb": py_peak, "stages": sampler.stages, "top_python_allocations": top,
        "torch_threads": bot.settings.torch_threads, "batch_size": bot.settings.embed_batch_size,
        "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    for s in sampler.stages:
        print(f"{s['stage']:28s} t={s['t_s']:7.1f} s  end {s['end_mb']:6d} MB  peak {s['peak_mb']:6d} MB")
    for k in ("docs", "chunks", "embed_precision", "index_s", "embed_s", "peak_rss_mb", "python_peak_mb",
              "load_avg_start", "load_avg_end"):
        print(f"{k:22s} {result[k]}")
    for line in top:
        print("  ", line)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"index_memory-{args.docs}-{result['embed_precision']}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
