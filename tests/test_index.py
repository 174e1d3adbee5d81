"""Index persistence: manifest checks, atomic versions, rebuild on any fault. Hashing embedder: no model."""
import json
import os

import numpy as np
import pytest

from qa_bot.index_store import _read_version, index_home, load_or_build
from qa_bot.ingest import load_corpus
from qa_bot.testing import HashEmbedder


def build(corpus, cache, embedder=None, **kw):
    docs, _ = load_corpus(corpus, 1 << 26)
    args = dict(corpus_dir=corpus, cache_dir=cache, embedder=embedder or HashEmbedder(), chunk_chars=400, chunk_max_tokens=256)
    args.update(kw)
    return load_or_build(docs, **args)


def live_dir(corpus, cache):
    home = index_home(cache, corpus)
    return home / (home / "CURRENT").read_text()


def test_built_then_loaded_without_re_embedding(small_corpus, tmp_path):
    first = build(small_corpus, tmp_path)
    second = build(small_corpus, tmp_path)
    assert first.info["how"] == "built" and second.info["how"] == "loaded"
    assert [c.id for c in first.chunks] == [c.id for c in second.chunks]
    assert {c.source for c in second.chunks} == {"alibaba_cloud_spinoff.txt", "weather.md"}


def test_search_finds_the_passage(small_corpus, tmp_path):
    index = build(small_corpus, tmp_path)
    q = HashEmbedder().embed(["millimetres of rain harbour city"])[0]
    assert index.search(q, 3)[0].chunk.source == "weather.md"


@pytest.mark.parametrize("change", ["corpus", "chunking", "model"])
def test_rebuilt_when_corpus_settings_or_model_change(small_corpus, tmp_path, change):
    build(small_corpus, tmp_path)
    kw = {}
    if change == "corpus":
        (small_corpus / "new.txt").write_text("A brand new document about ferries.", encoding="utf-8")
    elif change == "chunking":
        kw["chunk_chars"] = 200
    else:
        kw["embedder"] = HashEmbedder(dim=128)
        kw["embedder"].fingerprint = "hash-embedder:other"
    again = build(small_corpus, tmp_path, **kw)
    assert again.info["how"] == "built"


@pytest.mark.parametrize("fault", ["truncate", "garbage", "delete", "bad-pointer", "bad-manifest"])
def test_broken_cache_is_rebuilt_not_a_crash(small_corpus, tmp_path, fault):
    build(small_corpus, tmp_path)
    vdir = live_dir(small_corpus, tmp_path)
    if fault == "truncate":
        data = (vdir / "index.faiss").read_bytes()
        (vdir / "index.faiss").write_bytes(data[: len(data) // 2])
    elif fault == "garbage":
        (vdir / "vectors.npy").write_bytes(os.urandom(4096))
    elif fault == "delete":
        (vdir / "chunks.jsonl").unlink()
    elif fault == "bad-pointer":
        (index_home(tmp_path, small_corpus) / "CURRENT").write_text("../../etc")
    else:
        (vdir / "manifest.json").write_text("{not json")
    again = build(small_corpus, tmp_path)
    assert again.info["how"] == "built" and len(again.chunks) > 0
    assert build(small_corpus, tmp_path).info["how"] == "loaded"


def test_interrupted_write_leaves_the_previous_version_usable(small_corpus, tmp_path):
    first = build(small_corpus, tmp_path)
    home = index_home(tmp_path, small_corpus)
    # What a writer killed before its final rename leaves behind: a half-written version and a temp pointer.
    (home / "v-halfwritten").mkdir()
    (home / "v-halfwritten" / "index.faiss").write_bytes(b"partial")
    (home / "CURRENT.tmp-123-abc").write_text("v-halfwritten")
    again = build(small_corpus, tmp_path)
    assert again.info["how"] == "loaded" and len(again.chunks) == len(first.chunks)


def test_files_are_not_pickles(small_corpus, tmp_path):
    build(small_corpus, tmp_path)
    vdir = live_dir(small_corpus, tmp_path)
    assert sorted(p.name for p in vdir.iterdir()) == ["chunks.jsonl", "index.faiss", "manifest.json", "vectors.npy"]
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["embedding_model"] == HashEmbedder.fingerprint and manifest["chunk_chars"] == 400
    assert manifest["dim"] == HashEmbedder().dim  # the size the embedder reported, recorded
    np.load(vdir / "vectors.npy", allow_pickle=False)
    _read_version(index_home(tmp_path, small_corpus))
