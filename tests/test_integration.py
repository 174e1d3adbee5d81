"""The product as shipped: bundled MiniLM, the real FAISS index, SmolLM2 through llama.cpp on 127.0.0.1."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ARTICLE, CORPUS, ROOT

pytestmark = pytest.mark.slow
ARTICLE_TEXT = ARTICLE.read_bytes().decode("utf-8")


def test_ipo_year_is_answered_and_cited(real_bot):
    a = real_bot.ask("When did Alibaba go public in New York?")
    assert not a.abstained and "2014" in a.text
    assert any("went public in New York back in 2014" in c.text for c in a.citations)
    for c in a.citations:
        assert ARTICLE_TEXT[c.start:c.end] == c.text
        assert f"[{c.n}]" in a.text


def test_net_profit_abstains_with_closest_passages(real_bot):
    a = real_bot.ask("What was Alibaba's net profit in the quarter?")
    assert a.abstained and a.text == "The article does not say." and not a.citations
    assert len(a.retrieved) >= 1


def test_stream_matches_ask(real_bot):
    parts = list(real_bot.ask_stream("Who is the chairman and chief executive officer of Alibaba Group?"))
    final = parts[-1]
    assert "".join(parts[:-1]) == final.text and "Daniel Zhang" in final.text


def test_every_answer_sentence_is_cited_and_its_numbers_are_in_the_cited_passage(real_bot):
    from qa_bot import cite

    for q in ["How many independent companies did Alibaba's restructuring plan split it into?",
              "How much cost savings does the new instance family offer?"]:
        a = real_bot.ask(q)
        assert not a.abstained
        for sentence in cite.split_sentences(a.text):
            ns = cite.markers(sentence)
            assert ns, sentence
            cited = " ".join(c.text for c in a.citations if c.n in ns)
            assert cite.numbers(cite.strip_markers(sentence)) <= cite.numbers(cited)


def _cli(*args, env=None):
    e = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "qa_bot.cli", *args], capture_output=True, text=True, env=e, cwd=ROOT, timeout=300)


def test_cli_json_answer_for_the_revenue_question(tmp_path):
    r = _cli("ask", "How much revenue did the cloud business generate in the first quarter?", "--json",
             env={"QA_BOT_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"text", "abstained", "citations", "timings"}
    assert "2.7 billion" in out["text"] and not out["abstained"]
    sentence = "The cloud business generated $2.7 billion in revenue during the first quarter"
    assert any(sentence in c["text"] and ARTICLE_TEXT[c["start"]:c["end"]] == c["text"] for c in out["citations"])
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001])
def test_cli_bad_question_exits_2_with_one_line(question):
    r = _cli("ask", question)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("qa-bot: error:")


def test_cli_index_reports_chunks(tmp_path):
    r = _cli("index", "--corpus", str(CORPUS), env={"QA_BOT_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("indexed ") and " chunks from 1 documents" in r.stdout


def test_cli_missing_corpus_is_a_clear_error(tmp_path):
    r = _cli("ask", "Anything?", "--corpus", str(tmp_path / "nope"), env={"QA_BOT_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 1 and "corpus folder not found" in r.stderr and "Traceback" not in r.stderr
