"""FAISS index construction and search, with the index type chosen by corpus size.

Vectors are L2-normalised float32, so inner product = cosine. Below FLAT_MAX vectors the index is an
exact IndexFlatIP (single-query search is still a few ms and build is free); from FLAT_MAX up it is an
approximate IVF index with 8-bit scalar-quantised codes (IVF-SQ8). The measurements behind these choices
are in benchmarks/README.md ("The FAISS index"), from benchmarks/scale.py.

faiss is imported inside functions: it costs ~0.3 s to import and the CLI often doesn't need it.
"""
from __future__ import annotations

import math

import numpy as np

# Not Settings fields: they trade index speed against recall, never what an answer says, and were measured
# for this class of machine; benchmarks/scale.py re-measures them elsewhere.
FLAT_MAX = 50_000  # vectors; below this exact search is cheap enough (~3 ms) that approximation buys nothing
TRAIN_PER_LIST = 40  # k-means sample per list; faiss warns below 39, more only slows training
PROBE_FRACTION = 3 / 16  # share of lists scanned per query: recall@10 ~0.96 on the benchmark's hard data


def configure_threads(n: int) -> None:
    """Set FAISS's OpenMP thread count.

    Why explicit: FAISS defaults to one OpenMP thread per core and spins them up per call. On a 2-core box
    that competes with torch (embedding) and llama.cpp (generation) for the same cores, and single-query
    search gains nothing from threads (IVF/HNSW parallelise over queries; flat search gets slower under
    contention). OpenMP thread pools are also not fork-safe: a process forked after FAISS has used its
    pool (gradio/multiprocessing workers) can hang in the next parallel region. Use 1 for serving queries;
    more only for building a large index.
    """
    import faiss

    faiss.omp_set_num_threads(max(1, int(n)))


def _nlist(n: int) -> int:
    # ~2*sqrt(n) lists (power of two; 2048 at 1M): fewer lists = faster k-means and add, and with
    # PROBE_FRACTION fixed the scanned share (so recall) stays about the same.
    return max(1, min(2 ** round(math.log2(2 * math.sqrt(max(n, 1)))), n // TRAIN_PER_LIST))


def _nprobe(nlist: int) -> int:
    return max(1, min(nlist, round(nlist * PROBE_FRACTION)))


def build_index(vectors: np.ndarray, *, threshold: int = FLAT_MAX):
    """Return a FAISS index over L2-normalised float32 vectors: exact below `threshold`, IVF-SQ8 above.

    `threshold` is a hook for tests; callers should leave it at FLAT_MAX. Tiny inputs are always flat
    (IVF needs TRAIN_PER_LIST training points per list).
    """
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    index: faiss.Index
    if n < max(threshold, TRAIN_PER_LIST):
        index = faiss.IndexFlatIP(d)
    else:
        nlist = _nlist(n)
        # The factory owns the coarse quantizer (no Python-side lifetime issue), and the result round-trips
        # through faiss.write_index/read_index.
        ivf = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        # The factory returns the concrete class (here IndexIVFScalarQuantizer); faiss's stub says only Index.
        assert isinstance(ivf, faiss.IndexIVF)
        # k-means on an evenly spaced sample: training on all 1M points would take minutes for no recall gain.
        step = max(1, n // (TRAIN_PER_LIST * nlist))
        ivf.train(x[::step])
        ivf.nprobe = _nprobe(nlist)  # persisted by write_index; search() also sets it explicitly
        index = ivf
    if n:
        index.add(x)
    return index


def _search_params(index):
    """Search-time parameters, derived from the index structure so they are the same after read_index."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        # faiss's stub lists no arguments, but its wrapper sets any keyword given as an attribute
        return faiss.SearchParametersIVF(nprobe=_nprobe(index.nlist))  # type: ignore[call-arg]
    return None  # flat: exact, nothing to tune


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores, ids), each shape (len(queries), k); where fewer than k hits exist ids are -1 and
    scores -inf. An approximate index may return fewer than k hits even when ntotal >= k."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    nq = len(q)
    k = max(0, int(k))
    if index.ntotal == 0 or nq == 0 or k == 0:
        return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
    scores, ids = index.search(q, k, params=_search_params(index))
    scores[ids < 0] = -np.inf  # FAISS pads with -FLT_MAX; -inf can't be mistaken for a similarity
    return scores, ids


def describe(index) -> str:
    """Short human-readable index type with its search parameters, e.g. 'ivf-sq8(nlist=2048,nprobe=384)'."""
    import faiss

    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        bits = {faiss.ScalarQuantizer.QT_8bit: "sq8", faiss.ScalarQuantizer.QT_fp16: "sqfp16"}
        kind = bits.get(index.sq.qtype, "sq")
        return f"ivf-{kind}(nlist={index.nlist},nprobe={_nprobe(index.nlist)})"
    if isinstance(index, faiss.IndexIVF):
        return f"ivf(nlist={index.nlist},nprobe={_nprobe(index.nlist)})"
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    return type(index).__name__
