"""A news archive at scale: index 10,000 news-length documents, then query it.

    .venv/bin/python benchmarks/archive.py [--docs 10000] [--store faiss|milvus] [--seed 0] [--queries 100]

The archive is real text from this machine: Debian's /usr/share/doc files (changelogs, NEWS, READMEs, copyright
files; .gz ones unpacked), each document a slice of one file padded with shuffled real sentences from the others
to a news length of 3-5 KB. Deterministic for a seed (files sorted, one random.Random). Written once to
benchmarks/results/archive-<docs>-<seed>/corpus/ (reused if present), then indexed by the real bot
(QABot.build_index: reading, chunking and embedding at QA_BOT_EMBED_PRECISION, default onnx-int8, overlapped, and the
store's index).

Reports: index time, chunks/s, peak RSS of the process (ru_maxrss), on-disk size of the index, query latency
p50/p95 of the full retrieval step (question embedding + dense search + BM25 + fusion: Retriever.search) and
a filtered-query p50 (the dense search restricted to 20 sources, the `sources` restriction). Goals on 2 cores:
<= 10 min to index, <= 2 GB peak RSS, query p50 <= 50 ms. Writes <out>/archive-<docs>[-milvus].json and .png; the
load average is recorded beside the figures (the machine is shared).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOC_ROOT = Path("/usr/share/doc")
NAMES = re.compile(r"(readme|news|changelog|changes|copyright|\.txt$|\.md$)", re.I)
SENTENCE = re.compile(r"[^.!?\n]{40,300}[.!?]")


def source_texts() -> list[str]:
    """Every readable text file under /usr/share/doc, sorted by path (links skipped: one copy each)."""
    out = []
    for p in sorted(DOC_ROOT.rglob("*")):
        if p.is_symlink() or not p.is_file() or not NAMES.search(p.name) or p.stat().st_size > 2_000_000:
            continue
        try:
            raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue
        if len(text) >= 500 and "\x00" not in text:
            out.append(text)
    return out


def make_archive(folder: Path, n_docs: int, seed: int) -> None:
    rng = random.Random(seed)
    texts = source_texts()
    sentences = sorted({" ".join(m.group(0).split()) for t in texts for m in SENTENCE.finditer(t)})
    rng.shuffle(texts)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i in range(n_docs):
        size = rng.randint(3000, 5000)
        base = texts[i % len(texts)]
        start = rng.randrange(max(1, len(base) - size)) if len(base) > size else 0
        start = base.rfind("\n", 0, start) + 1  # from the start of a line
        body = base[start:start + size]
        paras = [body.rstrip()]
        while sum(map(len, paras)) < size:  # padded to news length with real sentences, in paragraphs
            paras.append(" ".join(rng.choice(sentences) for _ in range(rng.randint(3, 6))))
        (tmp / f"doc{i:05d}.txt").write_text(f"Archive item {i}\n\n" + "\n\n".join(paras) + "\n", "utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--store", choices=("faiss", "milvus"), default="faiss")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--plot-partial", type=Path, metavar="JSON",
                    help="only plot the trace of a run stopped before its end (its .partial.json) beside it")
    args = ap.parse_args()
    if args.plot_partial:
        plot_partial(args.plot_partial)
        return

    corpus = args.out / f"archive-{args.docs}-{args.seed}" / "corpus"
    if not corpus.is_dir():
        import multiprocessing

        t = time.perf_counter()
        # in a child process: the source texts it reads (~hundreds of MB) must not count in the bot's peak RSS
        child = multiprocessing.get_context("spawn").Process(target=make_archive, args=(corpus, args.docs, args.seed))
        child.start()
        child.join()
        if child.exitcode:
            sys.exit(f"archive: building the corpus failed (exit {child.exitcode})")
        print(f"archive: {args.docs} documents written to {corpus} in {time.perf_counter() - t:.1f} s")

    from qa_bot.pipeline import QABot
    from qa_bot.settings import Settings

    cache = Path(tempfile.mkdtemp(prefix="qa_archive_"))
    settings = Settings.from_env().replace(corpus_dir=corpus, cache_dir=cache, vector_store=args.store,
                                           vector_url=str(cache / "milvus.db") if args.store == "milvus" else "")
    bot = QABot(settings=settings)
    # (seconds, chunks embedded, documents done, 1-minute load): the documents are read as they are embedded
    # (QABot.build_index streams them), so the trace covers reading, chunking and embedding together
    trace: list[tuple[float, int, int, float]] = []
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    printed = [-60.0]
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / f"archive-{args.docs}{'' if args.store == 'faiss' else '-' + args.store}.partial.json"

    def progress(p) -> None:
        now = time.perf_counter() - t0
        load = os.getloadavg()[0]
        trace.append((now, p.done, p.docs_done, load))
        if now - printed[0] >= 60 or (p.done == p.total and not p.estimated):  # a line a minute: is the run on time?
            printed[0] = now
            # the run so far, rewritten each minute: a run stopped before its end still leaves its trace
            partial.write_text(json.dumps({"docs": args.docs, "seconds": round(now, 1), "progress": p.as_dict(),
                                           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
                                           "load_avg_start": load_start, "load_avg_now": os.getloadavg(),
                                           "embed_precision": settings.embed_precision,
                                           "trace": [[round(a, 1), b, c, round(d, 2)] for a, b, c, d in trace]}))
            total = f"~{p.total:,}" if p.estimated else f"{p.total:,}"
            print(f"archive: {p.done:,}/{total} chunks, {p.docs_done:,}/{p.docs_total:,} documents at {now:.0f} s "
                  f"({p.chunks_per_s:.0f} chunks/s, {p.docs_per_s:.1f} docs/s), ETA {p.eta_s or 0:.0f} s, load {load:.1f}",
                  flush=True)

    index = bot.build_index(force=True, progress=progress)
    index_s = time.perf_counter() - t0
    docs = bot.documents
    load_index = os.getloadavg()
    info = index.info
    retriever = bot.retriever

    rng = random.Random(args.seed + 1)
    chunks = list(index.chunks)
    questions = []
    for c in rng.sample(chunks, min(args.queries, len(chunks))):  # a question-like phrase from a real passage
        words = c.text.split()
        s = rng.randrange(max(1, len(words) - 10))
        questions.append("What about " + " ".join(words[s:s + 10]) + "?")
    retriever.search(questions[0])  # BM25 is built on the first question: not a query's cost
    lat = []
    for q in questions:
        t = time.perf_counter()
        retriever.search(q)
        lat.append(time.perf_counter() - t)
    allowed = frozenset(rng.sample(sorted(docs), min(20, len(docs))))
    flat = []
    for q in questions:
        vec = retriever.query_vector(q)
        t = time.perf_counter()
        try:
            hits = index.search(vec, settings.rerank_candidates, sources=allowed)
        except TypeError:  # an index without the sources restriction
            flat = []
            break
        flat.append(time.perf_counter() - t)
        assert all(h.chunk.source in allowed for h in hits)
    dense = []
    for q in questions:
        vec = retriever.query_vector(q)
        t = time.perf_counter()
        index.search(vec, settings.rerank_candidates)
        dense.append(time.perf_counter() - t)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    n_embedded = info.get("n_embedded") or len(chunks)
    result = {
        "docs": len(docs), "seed": args.seed, "store": args.store, "chunks": len(chunks),
        "corpus_mb": round(dir_size(corpus) / 1e6, 1),
        "embed_precision": info.get("embed_precision"), "index_type": info.get("index_type"),
        "embedding_model": info.get("embedding_model"),
        "index_s": round(index_s, 1), "embed_s": round(info.get("embed_s", 0), 1),
        "chunks_per_s": round(n_embedded / info["embed_s"], 1) if info.get("embed_s") else None,
        "chunks_per_s_wall": round(len(chunks) / index_s, 1),  # read + chunk + embed + FAISS + write, end to end
        "peak_rss_mb": round(peak / 1e6), "index_disk_mb": round(dir_size(cache) / 1e6, 1),
        "query_p50_ms": round(1000 * float(np.median(lat)), 1),
        "query_p95_ms": round(1000 * float(np.percentile(lat, 95)), 1),
        "dense_p50_ms": round(1000 * float(np.median(dense)), 2),
        "filtered_dense_p50_ms": round(1000 * float(np.median(flat)), 2) if flat else None,
        "filtered_sources": len(allowed), "queries": len(questions),
        "load_avg_start": load_start, "load_avg_after_index": load_index, "load_avg_end": os.getloadavg(),
        "load_1min_during_index": {"min": round(min(x[3] for x in trace), 2), "mean": round(float(np.mean([x[3] for x in trace])), 2),
                                   "max": round(max(x[3] for x in trace), 2)} if trace else None,
        "trace": [[round(t, 1), d, n, round(ld, 2)] for t, d, n, ld in trace],  # seconds, chunks, documents, load
        "goals": {"index_s": 600, "peak_rss_mb": 2000, "query_p50_ms": 50}, "cpus": os.cpu_count(),
    }
    for k, v in result.items():
        print(f"{k:22s} {v}")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"archive-{len(docs)}" + ("" if args.store == "faiss" else f"-{args.store}")  # one file per size, beside earlier runs
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    plot(args.out / f"{stem}.png", trace, lat, flat, result)
    partial.unlink(missing_ok=True)
    print(f"wrote {args.out / (stem + '.json')} and {stem}.png")
    shutil.rmtree(cache, ignore_errors=True)


def plot(path: Path, trace, lat, flat, r) -> None:
    """Chunks/s over time (each step's rate, and the running mean) with the machine's load, and the query latencies."""
    try:
        import matplotlib
    except ImportError:
        print("archive: matplotlib is not installed (pip install 'qa_bot[bench]'): no plot")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    if len(trace) > 1:
        t = np.array([x[0] for x in trace])
        done = np.array([x[1] for x in trace], dtype=float)
        step = np.diff(done) / np.maximum(np.diff(t), 1e-9)
        a.plot(t[1:], step, lw=0.6, alpha=0.5, label="each step")
        a.plot(t[1:], done[1:] / np.maximum(t[1:], 1e-9), lw=1.5,
               label=f"since the start (end: {r['chunks_per_s_wall']} chunks/s wall)")
        a.axhline(210, color="grey", ls="--", lw=0.8, label="goal: 210 chunks/s")
        loads = a.twinx()
        loads.plot(t, [x[3] for x in trace], color="red", lw=0.8, alpha=0.6)
        loads.set_ylabel("1-minute load (2 cores)", color="red")
    a.set(xlabel="seconds since start", ylabel="chunks/s",
          title=f"Indexing {r['docs']:,} docs ({r['chunks']:,} chunks) in {r['index_s']:.0f} s, {r['embed_precision']}")
    a.legend(loc="upper left", fontsize=8)
    b.hist([1000 * x for x in lat], bins=30, alpha=0.7, label=f"retrieval p50 {r['query_p50_ms']} ms")
    if flat:
        b.hist([1000 * x for x in flat], bins=30, alpha=0.7, label=f"filtered dense p50 {r['filtered_dense_p50_ms']} ms")
    b.set(xlabel="ms per query", ylabel="queries", title=f"Queries ({r['store']}), load {r['load_avg_end'][0]:.1f}")
    b.legend()
    fig.suptitle(f"peak RSS {r['peak_rss_mb']} MB, index on disk {r['index_disk_mb']} MB, 2 cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_partial(path: Path) -> None:
    """Chunks/s over time and the load, from a .partial.json: what a run that was stopped had done."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = json.loads(path.read_text())
    trace = r["trace"]
    t = np.array([x[0] for x in trace])
    done = np.array([x[1] for x in trace], dtype=float)
    fig, a = plt.subplots(figsize=(8, 4.2))
    a.plot(t[1:], np.diff(done) / np.maximum(np.diff(t), 1e-9), lw=0.6, alpha=0.5, label="each step")
    a.plot(t[1:], done[1:] / np.maximum(t[1:], 1e-9), lw=1.5, label=f"since the start ({done[-1] / t[-1]:.1f} chunks/s)")
    a.axhline(210, color="grey", ls="--", lw=0.8, label="goal: 210 chunks/s")
    a.set(xlabel="seconds since start", ylabel="chunks/s",
          title=f"{r['docs']:,} docs, {r['embed_precision']}: stopped after {r['seconds']:.0f} s, "
                f"{r['progress']['docs_done']:,} docs, {int(done[-1]):,} chunks")
    a.legend(loc="upper left", fontsize=8)
    loads = a.twinx()
    loads.plot(t, [x[3] for x in trace], color="red", lw=0.8, alpha=0.6)
    loads.set_ylabel("1-minute load (2 cores)", color="red")
    fig.suptitle(f"NOT RUN TO THE END; peak RSS so far {r['peak_rss_mb']} MB")
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
