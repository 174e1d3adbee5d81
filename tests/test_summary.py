"""Overview requests ("Summarize the article"): told apart from questions, answered with cited sentences."""
import json

import pytest

from conftest import ARTICLE, ROOT
from qa_bot import summary
from qa_bot.testing import mock_bot

OVERVIEWS = ["Summarize the article", "What is this about?", "What is the article about?", "Give me a quick summary",
             "tl;dr", "What are the main points?", "Can you summarise it in a few sentences?",
             "What are these documents about?", "Overview please", "what's it about"]
TOPICAL = ["Summarize the cloud revenue figures", "What is the spin-off about?", "What is Alibaba about?",
           "What are the key points of the restructuring plan?", "Give me a summary of Daniel Zhang's statement",
           "What was the recap of the first quarter results?"]


@pytest.mark.parametrize("q", OVERVIEWS)
def test_overview_requests_are_recognised(q):
    assert summary.is_overview(q)


@pytest.mark.parametrize("q", TOPICAL)
def test_requests_about_a_topic_are_questions(q):
    assert not summary.is_overview(q)


def test_no_question_of_any_question_set_is_taken_for_an_overview():
    files = sorted((ROOT / "eval").glob("*.jsonl")) + sorted((ROOT.parent / "shared" / "eval").glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    # a conversation set's rows hold their questions as turns
    questions = [t["question"] for row in rows for t in row.get("turns", [row])]
    assert len(questions) > 300
    assert [q for q in questions if summary.is_overview(q)] == []


def test_a_summary_is_the_lead_then_the_central_sentences_in_order():
    text = ARTICLE.read_text(encoding="utf-8")
    title = "Alibaba to spin off its cloud, AI and business messenger unit"
    spans = summary.summarize(text, title)
    assert len(spans) == summary.SUMMARY_SENTENCES and spans == sorted(spans)
    first = text[spans[0][0]:spans[0][1]]
    assert first.startswith("Seven weeks after Alibaba") and title not in first  # the title run-on is cut off
    assert all(summary.MIN_WORDS <= len(text[s:e].split()) <= summary.MAX_WORDS for s, e in spans)


def test_headings_and_bylines_are_not_summary_sentences():
    text = "Weather report\n\nBy Staff\n\nThe harbour city recorded 31 millimetres of rain on Tuesday. Short one."
    spans = summary.summarize(text, "Weather report")
    assert [text[s:e] for s, e in spans] == ["The harbour city recorded 31 millimetres of rain on Tuesday."]


def test_bot_answers_an_overview_with_every_sentence_cited_exactly(small_corpus, tmp_path):
    bot = mock_bot(small_corpus, tmp_path / "cache", responses=())
    answer = bot.ask("Summarize the article")
    assert not answer.abstained and bot.llm.calls == 0
    assert answer.text.count("[") == len(answer.citations) >= 2
    for c in answer.citations:
        assert bot.document_text(c.source)[c.start:c.end] == c.text
        assert f"{' '.join(c.text.split())} [{c.n}]" in answer.text
    assert {c.source for c in answer.citations} == {ARTICLE.name, "weather.md"}  # one lead per document


def test_a_chats_own_document_is_summarised_first(small_corpus, tmp_path):
    bot = mock_bot(small_corpus, tmp_path / "cache", responses=())
    session = bot.add_document(None, "notes.txt", b"Quarterly notes\n\nThe board met on Monday to approve the new "
                                                   b"budget for the harbour project. Nothing else was decided.")
    answer = bot.ask("What is this about?", session=session)
    first = answer.citations[0]
    assert first.source.endswith("notes.txt") and first.text.startswith("The board met on Monday")
    assert bot.document_text(first.source, session)[first.start:first.end] == first.text


def test_a_topical_summary_request_goes_to_the_reader(small_corpus, tmp_path):
    bot = mock_bot(small_corpus, tmp_path / "cache", responses=('{"answer": "", "sentence": 1}',))
    bot.ask("Summarize the cloud revenue figures")
    assert bot.llm.calls >= 1
