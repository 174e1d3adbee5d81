"""Exact vs approximate FAISS index at growing corpus sizes: build time, memory, latency, recall@10.

    .venv/bin/python benchmarks/scale.py [--sizes 10000 100000 1000000] [--out benchmarks/results]

Writes <out>/scale.json and <out>/scale.png and prints a table. Needs the `bench` extra (matplotlib, psutil).

Synthetic data (seeded, dim 384, unit vectors): uniform random unit vectors are a pathological case for
ANN (in 384 dims every point is almost equidistant from every other, so "nearest" is noise) and unlike
sentence embeddings. Instead: cluster centres are drawn in a LATENT-dim subspace (so topics overlap, as
real ones do, rather than being orthogonal), points are centres plus isotropic noise, and queries are data
points plus smaller noise (a question close to some passage). With these settings a query's top-1 has cosine
~0.79 and its 10th neighbour ~0.28, close behind the 11th: a moderately hard case, so recall is conservative.

Latency is single-query (k=10) with one FAISS thread, as the bot serves one question at a time; builds use
--threads. Timings on a shared machine are indicative: the load average at start is recorded in the JSON.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qa_bot import ann  # noqa: E402

DIM = 384
LATENT = 24  # dimension of the subspace the cluster centres live in
CLUSTER_SIZE = 50  # mean points per cluster
POINT_NOISE = 0.08  # per-dim std of points around their centre (cos to centre ~0.5)
QUERY_NOISE = 0.04  # per-dim std of queries around a data point (cos to it ~0.79)
K = 10


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_corpus(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    nc = max(1, n // CLUSTER_SIZE)
    basis = rng.standard_normal((LATENT, DIM), dtype=np.float32)
    centres = _unit(rng.standard_normal((nc, LATENT), dtype=np.float32) @ basis)
    out = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, 100_000):  # in blocks: bounded temporary memory at 1M
        e = min(n, s + 100_000)
        out[s:e] = centres[rng.integers(0, nc, e - s)]
        out[s:e] += POINT_NOISE * rng.standard_normal((e - s, DIM), dtype=np.float32)
    return _unit(out)


def make_queries(corpus: np.ndarray, nq: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(len(corpus), min(nq, len(corpus)), replace=False)
    return _unit(corpus[picks] + QUERY_NOISE * rng.standard_normal((len(picks), DIM), dtype=np.float32))


def _rss() -> int:
    import psutil

    try:  # hand freed heap back to the OS first, or freed temporaries get reused and hide the index's growth
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass

    return psutil.Process().memory_info().rss


def measure(kind: str, x: np.ndarray, queries: np.ndarray, truth: np.ndarray | None, threads: int) -> dict:
    import faiss

    ann.configure_threads(threads)
    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    # threshold hook forces the type: exact for "flat", approximate (what build_index uses above FLAT_MAX).
    index = ann.build_index(x, threshold=len(x) + 1 if kind == "flat" else 0)
    build_s = time.perf_counter() - t0
    rss_delta = _rss() - rss0
    index_bytes = len(faiss.serialize_index(index))

    ann.configure_threads(1)  # serving setting: one question at a time, one thread
    ann.search(index, queries[:5], K)  # warm-up
    times, ids = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, i = ann.search(index, q[None, :], K)
        times.append(time.perf_counter() - t0)
        ids.append(i[0])
    recall = 1.0 if truth is None else _recall(np.array(ids), truth)
    row = {
        "kind": kind,
        "index": ann.describe(index),
        "n": len(x),
        "build_s": round(build_s, 2),
        "index_mb": round(index_bytes / 2**20, 1),
        "rss_delta_mb": round(rss_delta / 2**20, 1),
        "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
        "p95_ms": round(float(np.percentile(times, 95)) * 1e3, 3),
        "recall_at_10": round(recall, 4),
    }
    if isinstance(index, faiss.IndexIVF):  # recall/latency trade-off around the chosen nprobe
        row["nprobe_sweep"] = []
        for nprobe in sorted({max(1, ann._nprobe(index.nlist) * f // 4) for f in (1, 2, 4, 8)}):
            params = faiss.SearchParametersIVF(nprobe=min(nprobe, index.nlist))
            times, ids = [], []
            for q in queries:
                t0 = time.perf_counter()
                ids.append(index.search(q[None, :], K, params=params)[1][0])
                times.append(time.perf_counter() - t0)
            row["nprobe_sweep"].append({"nprobe": params.nprobe, "recall_at_10": round(_recall(np.array(ids), truth), 4),
                                        "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3)})
    del index
    gc.collect()
    return row


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, truth)]))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, colour in (("flat", "tab:blue"), ("approx", "tab:orange")):
        rs = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["n"])
        if not rs:
            continue
        ns = [r["n"] for r in rs]
        label = "exact (flat)" if kind == "flat" else f"approx ({rs[-1]['index'].split('(')[0]})"
        ax1.plot(ns, [r["p50_ms"] for r in rs], "o-", color=colour, label=f"{label} p50")
        ax1.plot(ns, [r["p95_ms"] for r in rs], "o--", color=colour, alpha=0.6, label=f"{label} p95")
        ax2.plot(ns, [r["index_mb"] for r in rs], "o-", color=colour, label=label)
    ax1.axhline(20, color="grey", lw=0.8, ls=":", label="20 ms goal")
    ax2.axhline(2048, color="grey", lw=0.8, ls=":", label="2 GB limit")
    for ax, title, ylabel in ((ax1, "Single-query latency (k=10, 1 thread)", "ms"),
                              (ax2, "Index size (serialised)", "MB")):
        ax.axvline(ann.FLAT_MAX, color="red", lw=0.8, ls=":", label=f"FLAT_MAX={ann.FLAT_MAX:,}")
        ax.set(xscale="log", yscale="log", xlabel="corpus size (vectors, dim 384)", ylabel=ylabel, title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    import faiss

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--threads", type=int, default=2, help="FAISS threads for building and ground truth")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rows, t_start, load_at_start = [], time.perf_counter(), os.getloadavg()
    print(f"{'n':>9} {'kind':6} {'index':34} {'build s':>8} {'MB':>7} {'RSS MB':>7} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'R@10':>6}  picked")
    for n in args.sizes:
        x = make_corpus(n, args.seed)
        queries = make_queries(x, args.queries, args.seed)
        flat = measure("flat", x, queries, None, args.threads)
        # Ground truth: exact top-K by brute force (batched, all threads).
        ann.configure_threads(args.threads)
        exact = faiss.IndexFlatIP(DIM)
        exact.add(x)
        truth = exact.search(queries, K)[1]
        del exact
        approx = measure("approx", x, queries, truth, args.threads)
        picked = "flat" if n < ann.FLAT_MAX else approx["index"]
        for r in (flat, approx):
            r["picked_by_build_index"] = r["index"] == picked
            rows.append(r)
            print(f"{n:>9} {r['kind']:6} {r['index']:34} {r['build_s']:>8} {r['index_mb']:>7} "
                  f"{r['rss_delta_mb']:>7} {r['p50_ms']:>7} {r['p95_ms']:>7} {r['recall_at_10']:>6}  "
                  f"{'<-' if r['picked_by_build_index'] else ''}", flush=True)
        sweep = ", ".join(f"{s['nprobe']}: R={s['recall_at_10']} {s['p50_ms']}ms" for s in approx.get("nprobe_sweep", []))
        if sweep:
            print(f"{'':>9} nprobe sweep (single query, p50): {sweep}", flush=True)
        del x, queries, truth
        gc.collect()

    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "meta": {
            "faiss": faiss.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "cpus": os.cpu_count(), "build_threads": args.threads, "search_threads": 1,
            "load_avg_at_start": load_at_start, "queries": args.queries, "k": K, "seed": args.seed,
            "flat_max": ann.FLAT_MAX, "total_s": round(time.perf_counter() - t_start, 1),
            "data": {"dim": DIM, "latent": LATENT, "cluster_size": CLUSTER_SIZE, "point_noise": POINT_NOISE,
                     "query_noise": QUERY_NOISE},
        },
        "rows": rows,
    }
    tmp = args.out / "scale.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out / "scale.json")
    plot(rows, args.out / "scale.png")
    print(f"wrote {args.out / 'scale.json'} and {args.out / 'scale.png'} in {result['meta']['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
