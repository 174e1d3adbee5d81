"""Fast unit tests for qa_bot.ann (index choice, search contract, persistence)."""
from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from qa_bot import ann  # noqa: E402

DIM = 32


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n, seed=0, clusters=40, noise=0.15):
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, DIM)))
    return _unit(centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, DIM)))


@pytest.fixture(autouse=True)
def _one_thread():
    ann.configure_threads(1)


def test_small_corpus_is_flat():
    index = ann.build_index(_clustered(500))
    assert isinstance(index, faiss.IndexFlatIP)
    assert ann.describe(index) == "flat"
    assert index.ntotal == 500


def test_size_switch_gives_approximate_index():
    x = _clustered(4000)
    assert ann.describe(ann.build_index(x, threshold=4001)) == "flat"
    index = ann.build_index(x, threshold=4000)
    assert isinstance(index, faiss.IndexIVF)
    assert index.ntotal == 4000
    assert ann.describe(index).startswith("ivf-sq8(nlist=")


def test_default_switch_is_at_flat_max():
    x = _clustered(ann.FLAT_MAX)
    assert ann.describe(ann.build_index(x[:-1])) == "flat"
    assert ann.describe(ann.build_index(x)).startswith("ivf-sq8(")


def test_exact_top1_is_the_query_itself():
    x = _clustered(1000)
    scores, ids = ann.search(ann.build_index(x), x[:50], 5)
    assert (ids[:, 0] == np.arange(50)).all()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # descending


def test_approximate_recall_on_clustered_data():
    x = _clustered(6000, seed=1)
    rng = np.random.default_rng(2)
    q = _unit(x[rng.choice(len(x), 100, replace=False)] + 0.05 * rng.standard_normal((100, DIM)))
    _, truth = ann.search(ann.build_index(x), q, 10)
    _, got = ann.search(ann.build_index(x, threshold=0), q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)])
    assert recall >= 0.9


@pytest.mark.parametrize("threshold", [10**9, 0], ids=["flat", "approx"])
def test_write_read_round_trip(tmp_path, threshold):
    x = _clustered(3000, seed=3)
    index = ann.build_index(x, threshold=threshold)
    before = ann.search(index, x[:20], 10)
    path = tmp_path / "index.faiss"
    faiss.write_index(index, str(path))
    loaded = faiss.read_index(str(path))
    if threshold == 0:
        loaded.nprobe = 1  # a stale/odd persisted value must not change results: search() sets its own
    assert ann.describe(loaded) == ann.describe(index)
    after = ann.search(loaded, x[:20], 10)
    assert np.array_equal(before[1], after[1])
    assert np.allclose(before[0], after[0])


def test_k_larger_than_ntotal_pads():
    x = _clustered(3)
    scores, ids = ann.search(ann.build_index(x), x[:2], 5)
    assert scores.shape == ids.shape == (2, 5)
    assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert set(ids[0, :3]) == {0, 1, 2}


def test_empty_index():
    index = ann.build_index(np.zeros((0, DIM), dtype=np.float32))
    assert index.ntotal == 0
    scores, ids = ann.search(index, _clustered(2), 4)
    assert ids.shape == scores.shape == (2, 4)
    assert (ids == -1).all() and np.isneginf(scores).all()


def test_single_vector_query_and_dtype():
    x = _clustered(100)
    scores, ids = ann.search(ann.build_index(x.astype(np.float64)), x[7].astype(np.float64), 3)
    assert ids.shape == (1, 3) and ids[0, 0] == 7
    assert scores.dtype == np.float32 and ids.dtype == np.int64
