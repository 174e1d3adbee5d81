"""qa_bot.QARetriever against LangChain's standard retriever tests (langchain-tests, unmodified), on the real
MiniLM embedder and FAISS index (the shared `real_bot`; retrieval never starts the LLM), plus its metadata."""
from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from qa_bot import QARetriever

from conftest import ARTICLE, CORPUS

pytestmark = pytest.mark.slow
QUERY = "When did Alibaba go public in New York?"


class TestQARetrieverStandard(RetrieversIntegrationTests):
    bot = None

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _shared_bot(cls, real_bot):
        cls.bot = real_bot  # built once per run: the standard tests construct many retrievers

    @property
    def retriever_constructor(self) -> type[QARetriever]:
        return QARetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"bot": self.bot, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


def test_documents_carry_source_offsets_and_score(real_bot):
    retriever = QARetriever(bot=real_bot, k=3)
    assert isinstance(retriever, QARetriever) and retriever.bot is real_bot
    docs = retriever.invoke(QUERY)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    text = ARTICLE.read_text(encoding="utf-8")
    for d in docs:
        m = d.metadata
        assert set(m) == {"source", "start", "end", "title", "date", "score"}
        assert m["source"] == ARTICLE.name and text[m["start"]:m["end"]] == d.page_content
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True) and "2014" in docs[0].page_content
    assert len(retriever.invoke(QUERY, k=1)) == 1


def test_retriever_in_an_lcel_chain_and_bad_input(real_bot):
    from langchain_core.runnables import RunnableLambda

    chain = QARetriever(bot=real_bot, k=2) | RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs))
    assert "2014" in chain.invoke(QUERY)
    with pytest.raises(ValueError):
        QARetriever(bot=real_bot).invoke("   ")
    with pytest.raises(ValueError):
        QARetriever(bot=real_bot).invoke(QUERY, k=0)
    with pytest.raises(ValueError):
        QARetriever(k=0, bot=real_bot)


def test_builds_its_own_bot_for_a_corpus_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_BOT_CACHE_DIR", str(tmp_path / "cache"))
    retriever = QARetriever(k=2, corpus_dir=CORPUS)
    assert retriever.bot.settings.corpus_dir == CORPUS
    docs = retriever.invoke(QUERY)
    assert len(docs) == 2 and "2014" in docs[0].page_content
    assert (tmp_path / "cache").exists()  # its index went to the configured cache


def test_a_filter_restricts_the_real_index(tmp_path, monkeypatch):
    from pathlib import Path

    from qa_bot.errors import FilterError

    monkeypatch.setenv("QA_BOT_CACHE_DIR", str(tmp_path / "cache"))
    mixed = Path(__file__).parent / "data" / "mixed_corpus"  # six documents in five formats, five of them dated
    retriever = QARetriever(k=3, corpus_dir=mixed, since="2023-06-01")
    q = "When does the Gull Island ferry start running?"
    unfiltered = retriever.invoke(q, since="")
    assert unfiltered[0].metadata["source"] == "harbor_gazette_ferry.html"  # the ferry article, dated 2023-05-12
    docs = retriever.invoke(q)
    assert docs and {d.metadata["source"] for d in docs} <= {"northwind_annual_report.pdf", "port_strike.txt"}
    assert all(d.metadata["date"] >= "2023-06-01" for d in docs)
    with pytest.raises(FilterError, match="no document matches --source harbor_gazette_ferry.html --since 2023-06-01"):
        retriever.invoke(q, source="harbor_gazette_ferry.html")
