"""Issue 11, filters: one Filter, resolved to the set of allowed documents, which the FAISS and BM25 search is
restricted to; a filter that matches nothing is a FilterError (bad input), not an empty refusal. Fast: the
hashing embedder and the MockLLM."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qa_bot.errors import FilterError, InvalidQuestion
from qa_bot.filters import Filter, allowed_sources
from qa_bot.formats_base import Metadata
from qa_bot.lc import QAChain
from qa_bot.testing import HashEmbedder, mock_bot


MIXED = Path(__file__).parent / "data" / "mixed_corpus"
DATES = {"harbor_gazette_ferry.html": "2023-05-12", "kestrel_launch.md": "2022-11-02",
         "northwind_annual_report.pdf": "2023-09-15", "port_strike.txt": "2024-02-05", "signal_upgrade.rst": "2021-07-19"}


@pytest.fixture
def archive(tmp_path):
    d = tmp_path / "archive"
    shutil.copytree(MIXED, d)
    (d / "undated.txt").write_text("Ferry notes\n\nThe Gull Island ferry is popular with tourists in summer.\n")
    return d


def test_filter_of_checks_and_normalises_dates():
    assert Filter.of(" port  strike ", "2023/01/02", "May 3, 2023") == Filter("port strike", "2023-01-02", "2023-05-03")
    assert not Filter.of() and Filter.of(source="x")
    with pytest.raises(FilterError, match="--since 'last year' is not a date"):
        Filter.of(since="last year")
    with pytest.raises(FilterError, match="after --until"):
        Filter.of(since="2024-01-01", until="2023-01-01")
    assert issubclass(FilterError, InvalidQuestion)  # the edges already turn it into a bad-input message


def test_allowed_sources_by_name_glob_publisher_host_and_dates():
    meta = {"news/a.html": Metadata(date="2023-05-12", publisher="Harbor Gazette",
                                    url="https://www.harborgazette.example/x"),
            "b.md": Metadata(date="2022-11-02"), "c.txt": Metadata()}
    allowed = lambda **kw: allowed_sources(Filter.of(**kw), meta)  # noqa: E731
    assert allowed() is None
    for name in ("news/a.html", "a.html", "a", "news/*.html", "harbor gazette", "harborgazette.example", "A.HTML"):
        assert allowed(source=name) == {"news/a.html"}, name
    assert allowed(since="2023-01-01") == {"news/a.html"}
    assert allowed(until="2023-05-12") == {"news/a.html", "b.md"}  # inclusive; c.txt has no date
    assert allowed(source="c") == {"c.txt"}
    with pytest.raises(FilterError, match=r"no document matches --source c --since 2020-01-01; 1 of the 3 "
                                          r"documents have no date"):
        allowed(source="c", since="2020-01-01")
    with pytest.raises(FilterError, match="no document matches --source nothing-like-this"):
        allowed(source="nothing-like-this")


def test_ask_searches_only_the_allowed_documents(archive, tmp_path):
    bot = mock_bot(archive, tmp_path / "cache", min_similarity=0.0)  # the hashing embedder: list what is retrieved
    q = "When does the Gull Island ferry start and what does a ticket cost?"
    assert {h.chunk.source for h in bot.ask(q).retrieved} >= {"harbor_gazette_ferry.html", "undated.txt"}
    for kw, want in [(dict(since="2023-06-01"), {"northwind_annual_report.pdf", "port_strike.txt"}),
                     (dict(until="2022-12-31"), {"kestrel_launch.md", "signal_upgrade.rst"}),
                     (dict(source="undated"), {"undated.txt"}),
                     (dict(source="Harbor Gazette", since="2023-05-12", until="2023-05-12"), {"harbor_gazette_ferry.html"})]:
        got = {h.chunk.source for h in bot.ask(q, **kw).retrieved}
        assert got and got <= want, (kw, got)
        stream = bot.ask_stream(q, **kw)
        assert {h.chunk.source for h in stream.answer().retrieved} <= want


def test_a_filter_that_matches_nothing_is_an_error_not_a_refusal(archive, tmp_path):
    bot = mock_bot(archive, tmp_path / "cache")
    with pytest.raises(FilterError, match="no document matches --since 2030-01-01; 1 of the 6 documents have no date"):
        bot.ask("What does a ferry ticket cost?", since="2030-01-01")
    stream = bot.ask_stream("What does a ferry ticket cost?", source="nope")  # raised by the iteration
    with pytest.raises(FilterError, match="--source nope"):
        stream.answer()
    assert bot.llm.calls == 0


def test_the_publication_date_is_searchable(archive, tmp_path):
    bot = mock_bot(archive, tmp_path / "cache")
    # "February" is in no text: only port_strike.txt's date (2024-02-05, from its sidecar) says it
    ranked = [bot.index.chunks[i].source for i in bot.retriever._lexical("February", 5)]
    assert ranked and set(ranked) == {"port_strike.txt"}
    assert {bot.index.chunks[i].source for i in bot.retriever._lexical("2021-07-19", 5)} == {"signal_upgrade.rst"}


def test_vector_index_restriction_fills_k_from_the_allowed_documents(archive, tmp_path):
    bot = mock_bot(archive, tmp_path / "cache")
    index = bot.index
    vec = HashEmbedder().embed(["ferry ticket cost"])[0]
    only = frozenset({"signal_upgrade.rst"})
    n_allowed = sum(c.source in only for c in index.chunks)
    hits = index.search(vec, 50, only)
    assert len(hits) == n_allowed and {h.chunk.source for h in hits} == only
    assert len(index.search(vec, 1, only)) == 1
    assert index.search(vec, 5, frozenset({"missing.txt"})) == []
    scores = [h.score for h in index.search(vec, 100, frozenset(DATES))]
    assert scores == sorted(scores, reverse=True) and np.isfinite(scores).all()


def test_fake_bot_takes_the_same_filter(tmp_path):
    from fakes import FakeBot

    (tmp_path / "a.txt").write_text("Alibaba went public in 2014.", encoding="utf-8")
    bot = FakeBot(corpus_dir=tmp_path)
    assert bot.ask("When did Alibaba go public?", source="a.txt").citations
    with pytest.raises(FilterError):
        bot.ask("When did Alibaba go public?", since="2020-01-01")  # the fake corpus has no dates


def test_an_uploaded_pdf_is_searched_by_name_and_cited_with_its_page_title_and_date(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "weather.txt").write_text("Weather\n\nRain is expected on Tuesday in the harbour city.\n")
    bot = mock_bot(corpus, tmp_path / "cache", responses=('{"answer": "30 new electric trains", "sentence": 1}',
                                                          '{"verdict": "yes"}'), min_similarity=0.0)
    session = bot.add_document(None, "report.pdf", (MIXED / "northwind_annual_report.pdf").read_bytes())
    a = bot.ask("How many new electric trains will Northwind Rail order from Kestrel Works?", session=session,
                source="report.pdf")
    assert {h.chunk.source for h in a.retrieved} == {"session/report.pdf"}
    assert not a.abstained, a.reason
    c = a.citations[0]
    assert (c.source, c.page, c.title, c.date) == ("session/report.pdf", 2, "Northwind Rail Annual Report 2023",
                                                   "2023-09-15")
    assert bot.document_text(c.source, session)[c.start:c.end] == c.text


def test_an_overview_request_summarises_only_the_filtered_documents(archive, tmp_path):
    bot = mock_bot(archive, tmp_path / "cache")
    a = bot.ask("Summarize the articles", since="2023-06-01")
    assert not a.abstained and a.citations
    assert {c.source for c in a.citations} <= {"northwind_annual_report.pdf", "port_strike.txt"}
    assert all(c.date >= "2023-06-01" and c.title for c in a.citations)
    assert all(bot.document_text(c.source)[c.start:c.end] == c.text for c in a.citations)
    assert bot.llm.calls == 0


def test_retrieve_the_langchain_retriever_and_chain_take_the_same_filter(archive, tmp_path):
    import asyncio

    from qa_bot import QARetriever

    bot = mock_bot(archive, tmp_path / "cache", min_similarity=0.0)
    q = "When does the Gull Island ferry start and what does a ticket cost?"
    late, early = {"northwind_annual_report.pdf", "port_strike.txt"}, {"kestrel_launch.md", "signal_upgrade.rst"}
    assert {h.chunk.source for h in bot.retrieve(q, k=50, source="port_strike")} == {"port_strike.txt"}
    retriever = QARetriever(k=20, bot=bot, since="2023-06-01")
    sources = lambda docs: {d.metadata["source"] for d in docs}  # noqa: E731
    docs = retriever.invoke(q)
    assert sources(docs) == late  # k=20 > their chunks: every allowed document, no other
    assert {d.metadata["date"] for d in docs} == {DATES[src] for src in late}  # each document's own date
    assert sources(retriever.invoke(q, since="", until="2022-12-31")) == early  # a field per call overrides
    assert sources(asyncio.run(retriever.ainvoke(q, since="", until="2022-12-31"))) == early
    with pytest.raises(FilterError, match="no document matches --source undated --since 2023-06-01"):
        retriever.invoke(q, source="undated")  # the default since still applies, and undated.txt has no date
    with pytest.raises(FilterError, match="--until 'soon' is not a date"):
        retriever.invoke(q, until="soon")
    with pytest.raises(TypeError, match="colour"):
        retriever.invoke(q, colour="red")
    a = QAChain(bot).invoke({"question": q, "until": "2022-12-31"})
    assert a.retrieved and {h.chunk.source for h in a.retrieved} <= early
    *_, last = QAChain(bot).stream({"question": q, "source": "harbor_gazette_ferry.html"})
    assert {h.chunk.source for h in last.retrieved} == {"harbor_gazette_ferry.html"}
    with pytest.raises(FilterError, match="--source nope"):
        QAChain(bot).invoke({"question": q, "source": "nope"})
    assert set(QAChain(bot).get_input_schema().model_json_schema()["properties"]) >= {"source", "since", "until"}
