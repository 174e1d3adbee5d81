"""Issue 11, from one article to a news archive, with the real parts: the bundled MiniLM embedder, FAISS and BM25,
the `qa-bot` command, and (once) the default reader. The archive is tests/data/mixed_corpus: an HTML page with
Open Graph metadata, a two-page PDF, Markdown with front matter, reStructuredText, and a .txt with a sidecar."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow
MIXED = Path(__file__).parent / "data" / "mixed_corpus"
TITLES = {"harbor_gazette_ferry.html": ("City council approves new ferry route to Gull Island", "2023-05-12"),
          "kestrel_launch.md": ("Kestrel Works unveils the K7 electric train", "2022-11-02"),
          "northwind_annual_report.pdf": ("Northwind Rail Annual Report 2023", "2023-09-15"),
          "port_strike.txt": ("Dockworkers end strike at Port of Calder", "2024-02-05"),
          "signal_upgrade.rst": ("Signal upgrade on the East Line", "2021-07-19")}


def _cli(*args, cache):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_BOT_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "qa_bot.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


@pytest.fixture
def archive(tmp_path):
    d = tmp_path / "archive"
    shutil.copytree(MIXED, d)
    return d


@pytest.fixture(scope="module")
def embedder():
    from qa_bot.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def _extracted(bot, source):
    return bot.document_text(source)


def test_cli_index_then_docs_lists_titles_dates_and_chunks(archive, tmp_path):
    r = _cli("index", "--corpus", str(archive), cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    m = re.match(r"indexed (\d+) chunks from 5 documents .*\((\d+) reused, (\d+) embedded", r.stdout)
    assert m and int(m.group(2)) == 0 and int(m.group(3)) == int(m.group(1)) > 5, r.stdout
    (archive / "notes.html").write_text("<html><body><nav>Home</nav></body></html>", encoding="utf-8")
    r = _cli("docs", "--corpus", str(archive), "--json", cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert {d["source"]: (d["title"], d["date"]) for d in listed["documents"]} == TITLES
    assert all(d["chunks"] >= 1 for d in listed["documents"])
    assert sum(d["chunks"] for d in listed["documents"]) == int(m.group(1))  # as the index chunks them
    assert [d["pages"] for d in listed["documents"] if d["source"].endswith(".pdf")] == [2]
    assert [s["source"] for s in listed["skipped"]] == ["notes.html"] and "no article text" in listed["skipped"][0]["reason"]
    r = _cli("docs", "--corpus", str(archive), cache=tmp_path / "cache")
    assert r.returncode == 0 and "port_strike.txt  2024-02-05" in r.stdout and "skipped notes.html:" in r.stdout


def test_a_changed_file_re_embeds_only_its_chunks_and_a_deleted_one_leaves_the_index(archive, tmp_path, embedder):
    from qa_bot import QABot, Settings

    def build():
        bot = QABot(settings=Settings.from_env({}, corpus_dir=archive, cache_dir=tmp_path / "cache"), embedder=embedder)
        index = bot.build_index(force=True)
        return index, index.info["n_embedded"]

    first, n = build()
    assert n == len(first.chunks)
    again, n = build()
    assert n == 0 and len(again.chunks) == len(first.chunks)  # nothing changed: every vector reused
    strike = [c for c in first.chunks if c.source == "port_strike.txt"]
    text = (archive / "port_strike.txt").read_text(encoding="utf-8")
    (archive / "port_strike.txt").write_text(text.replace("7 percent raise", "9 percent raise"), encoding="utf-8")
    (archive / "signal_upgrade.rst").unlink()
    changed, n = build()
    assert 1 <= n <= len(strike)  # only the changed file's changed chunk(s)
    assert "signal_upgrade.rst" not in {c.source for c in changed.chunks}
    assert len(changed.chunks) == len(first.chunks) - sum(c.source == "signal_upgrade.rst" for c in first.chunks)
    assert any("9 percent raise" in c.text for c in changed.chunks)
    (archive / "new.txt").write_text("Airport opens\n\nThe new airport terminal opened on Monday.\n", encoding="utf-8")
    added, n = build()
    assert n == sum(c.source == "new.txt" for c in added.chunks) >= 1


def test_citations_carry_title_date_and_page_and_quote_the_extracted_text(archive, tmp_path, embedder):
    from qa_bot import QABot, Settings
    from qa_bot.testing import MockLLM

    yes = '{"verdict": "yes"}'
    s = Settings.from_env({}, corpus_dir=archive, cache_dir=tmp_path / "cache")
    bot = QABot(settings=s, embedder=embedder, llm=MockLLM(responses=['{"answer": "30", "sentence": 1}', yes]))
    a = bot.ask("How many new electric trains does Northwind Rail expect to order from Kestrel Works?",
                since="2023-01-01")
    assert not a.abstained, a.reason
    c = a.citations[0]
    assert (c.source, c.title, c.date, c.page) == ("northwind_annual_report.pdf", *TITLES[c.source], 2)
    assert {h.chunk.source for h in a.retrieved} <= {"northwind_annual_report.pdf", "harbor_gazette_ferry.html",
                                                     "port_strike.txt"}
    bot = QABot(settings=s, embedder=embedder, llm=MockLLM(responses=['{"answer": "45", "sentence": 1}', yes]))
    a = bot.ask("How many orders has Kestrel Works received for trains?", source="kestrel_launch.md")
    assert not a.abstained, a.reason
    for c in a.citations:
        assert (c.source, c.title, c.date, c.page) == ("kestrel_launch.md", *TITLES[c.source], None)
        assert _extracted(bot, c.source)[c.start:c.end] == c.text and "*" not in c.text and "[" not in c.text
    d = a.to_dict()["citations"][0]
    assert d["title"] == TITLES["kestrel_launch.md"][0] and d["date"] == "2022-11-02"


def test_cli_filter_that_matches_nothing_exits_2_with_one_line(archive, tmp_path):
    r = _cli("ask", "What does a ferry ticket cost?", "--corpus", str(archive), "--since", "2030-01-01",
             cache=tmp_path / "cache")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "no document matches --since 2030-01-01" in r.stderr and "Traceback" not in r.stderr
    r = _cli("ask", "What does a ferry ticket cost?", "--corpus", str(archive), "--until", "soon",
             cache=tmp_path / "cache")
    assert r.returncode == 2 and "--until 'soon' is not a date" in r.stderr


def test_cli_ask_with_a_date_filter_end_to_end(archive, tmp_path):
    """The real reader: the answer comes from the one document in the date range, cited with its title and date."""
    r = _cli("ask", "How much will a single ferry ticket to Gull Island cost?", "--corpus", str(archive),
             "--since", "2023-01-01", "--until", "2023-06-30", "--json", cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    assert not a["abstained"], a
    assert "4" in a["text"]
    from qa_bot.ingest import load_corpus

    texts = {d.source: d.text for d in load_corpus(archive, 1 << 20)[0]}
    for c in a["citations"]:
        assert (c["source"], c["title"], c["date"]) == ("harbor_gazette_ferry.html", *TITLES[c["source"]])
        assert texts[c["source"]][c["start"]:c["end"]] == c["text"]
    r = _cli("ask", "How much will a single ferry ticket to Gull Island cost?", "--corpus", str(archive),
             "--source", "harbor_gazette_ferry.html", cache=tmp_path / "cache")
    assert r.returncode == 0 and "harbor_gazette_ferry.html — City council approves" in r.stdout, r.stdout + r.stderr
    assert "(2023-05-12)" in r.stdout
