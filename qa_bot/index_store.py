"""Index store: a corpus's FAISS index kept on disk in versions, safely (load_or_build: the valid version, or one
built now, with index_build.py, and saved atomically).

Layout of <cache_dir>/<corpus key>/:
    CURRENT            name of the live version folder (replaced atomically with os.replace)
    v-<id>/            manifest.json, index.faiss, chunks.jsonl, vectors.npy
    .lock              file lock: one builder at a time
Nothing here is unpickled: FAISS's own binary format, JSON lines and .npy with allow_pickle=False.
A version is used only when its manifest matches the embedding model, the chunking settings and the
corpus hash, and every file's sha256 matches; otherwise it is rebuilt. Vectors of unchanged chunk texts
are reused from the previous version, so adding a document embeds only its chunks.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import ann
from .index import Embedder, VectorIndex
from .index_build import Progress, build_vectors, load_model, stream_vectors, text_key
from .ingest import CorpusStream, Document, chunk_documents
from .types import Chunk
from .weights import file_sha256

log = logging.getLogger("qa_bot")

FORMAT_VERSION = 6  # 2: chunks are of each document's extracted text (formats.py), not its raw bytes;
# 3: the sentence splitter keeps a name's initials in the sentence ("Philip A. Nelson"), so chunks move;
# 4: it ends a sentence before a bulleted list item, so chunks move again;
# 5: Markdown badge lines are dropped and fenced code is indented, so a README's text moves; a line of
# references ("[#61303]", "CVE-2023-24056") joins the sentence before it; 6: a reStructuredText admonition's
# line (".. note:: ...") is kept as its text
FILES = ("index.faiss", "chunks.jsonl", "vectors.npy")
# Seconds to wait for another process's build: long enough to embed a large corpus on 2 cores. A safety
# bound, not a knob: waiting less would only start a second, duplicate build.
BUILD_LOCK_WAIT = 900


def corpus_hash(docs: Sequence[Document]) -> str:
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.source):
        h.update(f"{d.source}\0{d.sha256}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def index_home(cache_dir: Path, corpus_dir: Path) -> Path:
    key = hashlib.sha256(str(Path(corpus_dir).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"index-{key}"


def expected_manifest(docs, embedder: Embedder, chunk_chars: int, chunk_max_tokens: int) -> dict:
    return {
        "format": FORMAT_VERSION,
        "embedding_model": embedder.fingerprint,
        # vectors of one precision are never searched with query vectors of another: a change rebuilds
        "embed_precision": getattr(embedder, "precision", "fp32"),
        "chunk_chars": chunk_chars,
        "chunk_max_tokens": chunk_max_tokens,
        "corpus_sha256": corpus_hash(docs),
    }


def _fsync_write(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write and fsync; data may come in pieces (chunks.jsonl line by line: no second copy of every text)."""
    with open(path, "wb") as f:
        for piece in [data] if isinstance(data, bytes) else data:
            f.write(piece)
        f.flush()
        os.fsync(f.fileno())


def _read_version(home: Path) -> tuple[Path, dict, list[Chunk], np.ndarray, object]:
    """Load and verify the live version; raise ValueError/OSError on any inconsistency."""
    import faiss

    name = (home / "CURRENT").read_text().strip()
    if not name.startswith("v-") or "/" in name:
        raise ValueError(f"bad CURRENT pointer {name!r}")
    vdir = home / name
    manifest = json.loads((vdir / "manifest.json").read_text())
    for fname in FILES:
        if file_sha256(vdir / fname) != manifest["files"][fname]:
            raise ValueError(f"{fname} does not match its manifest (truncated or overwritten)")
    chunks = [Chunk(**json.loads(line)) for line in (vdir / "chunks.jsonl").read_text("utf-8").splitlines() if line]
    vectors = np.load(vdir / "vectors.npy", allow_pickle=False, mmap_mode="r")  # not resident: 1.5 GB at 1M chunks
    index = faiss.read_index(str(vdir / "index.faiss"))
    if not (len(chunks) == len(vectors) == index.ntotal == manifest["n_chunks"]):
        raise ValueError("chunk, vector and index counts disagree")
    return vdir, manifest, chunks, vectors, index


def _matches(manifest: dict, expected: dict) -> bool:
    return all(manifest.get(k) == v for k, v in expected.items())


def _try_load(home: Path, expected: dict, warn: bool = True) -> VectorIndex | None:
    try:
        if not (home / "CURRENT").exists():
            return None
        _, manifest, chunks, _, index = _read_version(home)
    except Exception as exc:  # corrupt cache of any kind: log and rebuild, never crash
        # warn=False on the second look under the lock: the same warning is not printed twice.
        log.log(logging.WARNING if warn else logging.DEBUG, "index cache in %s is unusable (%s); rebuilding", home, exc)
        return None
    if not _matches(manifest, expected):
        log.info("index cache in %s is from other settings or another corpus; rebuilding", home)
        return None
    return VectorIndex(chunks, index, {**manifest, "how": "loaded"})


def _previous_vectors(home: Path, embedding_model: str) -> dict[str, np.ndarray]:
    """Vectors of the previous version by chunk-text hash, when it used the same embedding model."""
    try:
        _, manifest, chunks, vectors, _ = _read_version(home)
    except Exception:
        return {}
    if manifest.get("embedding_model") != embedding_model:
        return {}
    return {text_key(c.text): vectors[i] for i, c in enumerate(chunks)}


def _write_version(home: Path, manifest: dict, chunks: list[Chunk], vectors: np.ndarray, index) -> Path:
    vdir = home / f"v-{uuid.uuid4().hex[:12]}"
    tmp = home / f"CURRENT.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        _write_files(home, vdir, tmp, manifest, chunks, vectors, index)
    except BaseException:
        # A write that failed (disk full, CURRENT is a folder) leaves no half version behind, run after run.
        shutil.rmtree(vdir, ignore_errors=True)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    return vdir


def _write_files(home: Path, vdir: Path, tmp: Path, manifest: dict, chunks: list[Chunk], vectors: np.ndarray, index) -> None:
    import faiss

    vdir.mkdir(parents=True)
    faiss.write_index(index, str(vdir / "index.faiss"))
    _fsync_write(vdir / "chunks.jsonl",
                 ((json.dumps(c.__dict__, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass") for c in chunks))
    with open(vdir / "vectors.npy", "wb") as f:
        np.save(f, vectors, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    manifest = {**manifest, "files": {f: file_sha256(vdir / f) for f in FILES}}
    _fsync_write(vdir / "manifest.json", json.dumps(manifest, indent=1).encode())
    # The switch is a single atomic rename: readers see the old version or the new one, never half.
    _fsync_write(tmp, vdir.name.encode())
    os.replace(tmp, home / "CURRENT")
    dfd = os.open(home, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _repair_pointer(home: Path) -> None:
    """A CURRENT that is a folder (made by hand, or by a tool that mistook the name) is not ours to keep: the live
    version is named by a file, so it is removed, under the build lock, and the build below writes the pointer
    (issue 45, C10: such a cache was rebuilt in memory on every run and never repaired)."""
    current = home / "CURRENT"
    if current.is_dir() and not current.is_symlink():
        try:
            shutil.rmtree(current)
        except OSError:  # the write below fails too, and says what to delete
            return
        log.warning("index cache %s: CURRENT was a folder, not the pointer to the index; removed it, so the index "
                    "built now is saved", home)


def _remove_stale(home: Path, keep: str) -> None:
    for p in home.iterdir():
        if (p.name.startswith("v-") and p.name != keep) or p.name.startswith("CURRENT.tmp-"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def load_or_build(
    docs: Sequence[Document] | CorpusStream,
    *,
    corpus_dir: Path,
    cache_dir: Path,
    embedder: Embedder,
    chunk_chars: int,
    chunk_max_tokens: int,
    force: bool = False,
    progress: Progress | None = None,
) -> VectorIndex:
    """The index for these documents: loaded from the cache when valid, else built and saved atomically. A cache
    that cannot be written (its folder is a file, CURRENT or the lock is a folder, no permission, disk full) does
    not stop the bot: the index is built in memory for this run, with one warning saying what to delete. A
    CorpusStream of documents still being read is chunked and embedded as it is read when the build is forced (the
    cache check needs every document first); its documents and skipped files are on the stream afterwards."""
    from filelock import FileLock

    home = index_home(cache_dir, corpus_dir)
    if isinstance(docs, CorpusStream) and not force:
        docs = list(docs)  # the cache check needs every document's hash first: nothing to overlap with
    if isinstance(docs, CorpusStream):  # forced: documents are chunked and embedded as they are read
        build = lambda reuse: _build_stream(docs, embedder, chunk_chars, chunk_max_tokens, reuse, progress)  # noqa: E731
    else:
        expected = expected_manifest(docs, embedder, chunk_chars, chunk_max_tokens)
        if not force and (found := _try_load(home, expected)):
            return found
        build = lambda reuse: _build(docs, expected, embedder, chunk_chars, chunk_max_tokens, reuse, progress)  # noqa: E731
    try:
        home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(home / ".lock"), timeout=BUILD_LOCK_WAIT)
        lock.acquire()
    except OSError as exc:
        _warn_unwritable(home, exc)
        return build({})[0]
    try:
        # Another process may have built it while we waited for the lock.
        if not force and (found := _try_load(home, expected, warn=False)):
            return found
        _repair_pointer(home)
        built, chunks, vectors, index = build(_previous_vectors(home, embedder.fingerprint))
        try:
            vdir = _write_version(home, {k: v for k, v in built.info.items() if k not in _RUN_INFO}, chunks, vectors, index)
            _remove_stale(home, keep=vdir.name)
        except (OSError, RuntimeError) as exc:  # RuntimeError: faiss's own write failed
            _warn_unwritable(home, exc)
            return built
        log.info("built index: %d chunks (%d embedded) in %s", len(chunks), built.info["n_embedded"], home)
        return built
    finally:
        lock.release()


_RUN_INFO = ("how", "n_embedded", "chunk_s", "embed_s", "stream_s", "index_s")  # of this run, not of the saved version


def _build(docs, expected: dict, embedder: Embedder, chunk_chars: int, chunk_max_tokens: int, reuse: dict,
           progress=None):
    """(VectorIndex, chunks, vectors, faiss index) built in memory."""
    t0 = time.perf_counter()
    chunks = chunk_documents(docs, max_chars=chunk_chars, max_tokens=chunk_max_tokens, count_tokens=embedder.count_tokens)
    load_model(embedder)  # now: its start-up is not embedding time (chunks/s)
    t1 = time.perf_counter()
    vectors, n_embedded = build_vectors(chunks, embedder, reuse, progress, n_docs=len(docs))
    t2 = time.perf_counter()
    return _finish(expected, chunks, vectors, n_embedded, {"chunk_s": t1 - t0, "embed_s": t2 - t1}, t2)


def _build_stream(stream: CorpusStream, embedder: Embedder, chunk_chars: int, chunk_max_tokens: int, reuse: dict,
                  progress=None):
    """_build for documents still being read: chunking and embedding overlap their extraction (stream_vectors).
    embed_s is the time inside the embedder; stream_s the whole pass (reading, chunking and embedding)."""
    load_model(embedder)  # first: its start-up (and a first-time export) is not embedding time
    t1 = time.perf_counter()
    docs, chunks, vectors, n_embedded, embed_s = stream_vectors(
        stream, embedder, reuse, chunk_chars=chunk_chars, chunk_max_tokens=chunk_max_tokens, docs_total=stream.total,
        progress=progress)
    t2 = time.perf_counter()
    expected = expected_manifest(docs, embedder, chunk_chars, chunk_max_tokens)
    return _finish(expected, chunks, vectors, n_embedded, {"embed_s": embed_s, "stream_s": t2 - t1}, t2)


def _finish(expected: dict, chunks: list[Chunk], vectors: np.ndarray, n_embedded: int, timing: dict, t2: float):
    index = ann.build_index(vectors)
    manifest = {
        **expected,
        "n_chunks": len(chunks),
        "dim": int(vectors.shape[1]),  # as the embedding model reported it, not guessed from its name
        "index_type": ann.describe(index),
        "sources": sorted({c.source for c in chunks}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    timing = {**timing, "index_s": time.perf_counter() - t2}
    info = {**manifest, "how": "built", "n_embedded": n_embedded, **timing}
    return VectorIndex(chunks, index, info), chunks, vectors, index


def _warn_unwritable(home: Path, exc: Exception) -> None:
    log.warning("index cache %s cannot be written (%s); using an index in memory for this run. "
                "Delete %s (or set QA_BOT_CACHE_DIR to another folder) to fix it", home,
                getattr(exc, "strerror", None) or exc, home)
