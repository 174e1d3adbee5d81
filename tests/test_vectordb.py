"""The Milvus engine (qa_bot/vectordb.py, Milvus Lite embedded in a temp file) against embedded FAISS: the same
top passages, a sources restriction honoured in the database, reuse of a complete collection, and one clear line
for an unreachable server."""
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")

from qa_bot.cli import main as cli_main  # noqa: E402
from qa_bot.errors import QABotError  # noqa: E402
from qa_bot.index_store import load_or_build  # noqa: E402
from qa_bot.ingest import load_corpus  # noqa: E402
from qa_bot.settings import Settings  # noqa: E402
from qa_bot.testing import HashEmbedder  # noqa: E402
from qa_bot.vectordb import load_or_build_milvus, open_index  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NEWS = ROOT / "eval" / "news_corpus"


def questions(name):
    return [json.loads(line)["question"] for line in (ROOT / "eval" / name).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def news(tmp_path_factory):
    """The news corpus (13 documents, ~600 chunks) in FAISS and in Milvus Lite, with the hashing embedder."""
    tmp = tmp_path_factory.mktemp("news")
    docs, _ = load_corpus(NEWS, 1 << 26)
    emb = HashEmbedder()
    kw = dict(embedder=emb, chunk_chars=400, chunk_max_tokens=256)
    faiss_index = load_or_build(docs, corpus_dir=NEWS, cache_dir=tmp / "cache", **kw)
    milvus_index = load_or_build_milvus(docs, url=str(tmp / "milvus.db"), **kw)
    yield docs, emb, faiss_index, milvus_index, kw, tmp
    milvus_index.client.close()


def test_milvus_ranks_as_faiss_on_the_news_questions(news):
    _, emb, faiss_index, milvus_index, _, _ = news
    assert [c.id for c in milvus_index.chunks] == [c.id for c in faiss_index.chunks]
    for q in questions("news_qa.jsonl"):
        vec = emb.embed([q])[0]
        want, got = faiss_index.search(vec, 10), milvus_index.search(vec, 10)
        assert len(got) == len(want), q
        # Each chunk Milvus returns scores as FAISS scores it.
        scores = {h.chunk.id: h.score for h in faiss_index.search(vec, len(faiss_index.chunks))}
        assert np.allclose([h.score for h in got], [scores[h.chunk.id] for h in got], atol=1e-4), q
        # The hashing embedder ties often (two different chunks, one score), and Milvus Lite may return either
        # tied chunk, or only one of a tied pair: every chunk FAISS ranks above the cut without a tie is returned.
        cut = want[-1].score + 1e-4
        untied = {h.chunk for h in want if h.score > cut and sum(abs(h.score - o.score) < 1e-4 for o in want) == 1}
        assert untied <= {h.chunk for h in got}, q
        texts = {c.id: c for c in faiss_index.chunks}
        assert all(texts[h.chunk.id] == h.chunk for h in got)  # text, source and span come back from the database


def test_restricted_search_returns_only_allowed_sources(news):
    _, emb, _, milvus_index, _, _ = news
    allowed = frozenset({"grep_NEWS.txt", "bash_NEWS.txt"})
    vec = emb.embed(["What changed in the latest release of coreutils?"])[0]
    unrestricted = {h.chunk.source for h in milvus_index.search(vec, 20)}
    assert unrestricted - allowed  # the restriction has something to remove
    hits = milvus_index.search(vec, 20, sources=allowed)
    assert len(hits) == 20 and {h.chunk.source for h in hits} <= allowed
    # the best of the allowed chunks, exactly: the same as ranking those chunks alone
    rows = [i for i, c in enumerate(milvus_index.chunks) if c.source in allowed]
    vecs = emb.embed([milvus_index.chunks[i].text for i in rows])
    best = [milvus_index.chunks[rows[j]].id for j in np.argsort(-(vecs @ vec), kind="stable")[:5]]
    assert [h.chunk.id for h in hits[:5]] == best
    assert milvus_index.search(vec, 5, sources=frozenset()) == []


def test_a_complete_collection_is_reused_and_a_changed_corpus_gets_its_own(news):
    docs, _, _, milvus_index, kw, tmp = news
    again = load_or_build_milvus(docs, url=str(tmp / "milvus.db"), **kw)
    assert again.info["how"] == "loaded" and again.collection == milvus_index.collection
    fewer = load_or_build_milvus(docs[:3], url=str(tmp / "milvus.db"), **kw)
    assert fewer.info["how"] == "built" and fewer.collection != milvus_index.collection
    assert {h.chunk.source for h in fewer.search(kw["embedder"].embed(["release"])[0], 50)} <= {d.source for d in docs[:3]}


def test_unreachable_database_is_one_clear_line(tmp_path, capsys, monkeypatch):
    s = Settings(vector_store="milvus", vector_url="http://127.0.0.1:9", cache_dir=tmp_path)
    docs, _ = load_corpus(ROOT / "docs_corpus", 1 << 26)
    with pytest.raises(QABotError, match=r"vector database at http://127.0.0.1:9 cannot be reached"):
        open_index(s, docs, HashEmbedder())
    monkeypatch.setenv("QA_BOT_VECTOR_STORE", "milvus")
    monkeypatch.setenv("QA_BOT_VECTOR_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("QA_BOT_CACHE_DIR", str(tmp_path))
    assert cli_main(["index", "--corpus", str(ROOT / "docs_corpus")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qa-bot: error: vector database at http://127.0.0.1:9")


@pytest.mark.slow
def test_dev_questions_retrieve_the_same_passages_with_milvus_as_with_faiss(tmp_path):
    """The real model and the real hybrid retriever (BM25 + dense, RRF) over the dev article."""
    from qa_bot.embed import SentenceTransformerEmbedder
    from qa_bot.pipeline import QABot

    emb = SentenceTransformerEmbedder()
    base = Settings(corpus_dir=ROOT / "docs_corpus", cache_dir=tmp_path)
    faiss_bot = QABot(settings=base, embedder=emb)
    milvus_bot = QABot(settings=base.replace(vector_store="milvus"), embedder=emb)
    assert milvus_bot.index.info["index_type"].startswith("milvus(")
    for q in questions("article_qa.jsonl"):
        want, got = faiss_bot.retriever.search(q), milvus_bot.retriever.search(q)
        assert [h.chunk for h in got] == [h.chunk for h in want], q
        assert [s.text for s in milvus_bot.retriever.sentences(q, got, 3)] == \
               [s.text for s in faiss_bot.retriever.sentences(q, want, 3)]


def test_an_incomplete_collection_is_filled_never_dropped(news, monkeypatch):
    """A replica that finds the collection half-written (another replica still filling it, or one that died)
    completes it in place: dropping it would pull the index from under the replica writing or reading it."""
    docs, emb, _, _, kw, tmp = news
    url = str(tmp / "partial.db")
    full = load_or_build_milvus(docs, url=url, **kw)
    n, name = full.info["n_chunks"], full.collection
    full.client.delete(name, filter=f"row >= {n // 2}")
    full.client.flush(name)
    full.client.close()
    from pymilvus import MilvusClient
    monkeypatch.setattr(MilvusClient, "drop_collection", lambda *a, **k: pytest.fail("dropped a collection in use"))
    again = load_or_build_milvus(docs, url=url, **kw)
    assert again.info["how"] == "built" and again.collection == name
    res = again.client.query(name, filter="", output_fields=["count(*)"])
    assert int(res[0]["count(*)"]) == n
    again.client.close()
