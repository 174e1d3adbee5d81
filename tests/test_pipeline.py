"""QABot's control flow with a hashing embedder and a MockLLM: fast, no model."""
import pytest

from qa_bot import REFUSAL, Answer
from qa_bot.errors import CorpusError, InvalidQuestion
from qa_bot.testing import mock_bot

Q_IPO = "When did Alibaba go public in New York?"


@pytest.fixture
def make(small_corpus, tmp_path):
    def _make(*responses, **settings):
        return mock_bot(small_corpus, tmp_path / "cache", responses=responses or ("I do not know.",), **settings)
    return _make


@pytest.mark.parametrize("bad", ["", "   \n\t", "\x00\x01\u200b\u202e", "x" * 2001, "?!…", None])
def test_bad_questions_raise_a_clear_value_error_without_calling_the_llm(make, bad):
    bot = make()
    with pytest.raises(InvalidQuestion) as err:
        bot.ask(bad)
    assert isinstance(err.value, ValueError) and str(err.value)
    assert bot.llm.calls == 0


def test_control_characters_are_stripped(make):
    bot = make("Alibaba went public in New York in 2014 [1].")
    answer = bot.ask("When did Alibaba\x00 go public\u202e in New York?\u200b")
    assert answer.question == Q_IPO


def test_grounded_answer_with_citation_spans_into_the_file(make, small_corpus):
    bot = make("Alibaba went public in New York in 2014 [1].")
    a = bot.ask(Q_IPO)
    assert not a.abstained and "2014" in a.text and a.text.endswith("[1].")
    c = a.citations[0]
    assert c.n == 1 and "2014" in c.text
    assert (small_corpus / c.source).read_text(encoding="utf-8")[c.start:c.end] == c.text
    assert set(a.timings) >= {"retrieve", "generate", "verify", "total"}


def test_unanswerable_question_abstains_without_calling_the_llm(make):
    bot = make("Alibaba's net profit was $1.1 billion [1].")
    a = bot.ask("What was Alibaba's net profit in the quarter?")
    assert a.abstained and a.text == REFUSAL and a.citations == ()
    assert a.retrieved, "the closest passages are still listed"
    assert bot.llm.calls == 0


def test_invented_answer_is_never_shown(make):
    bot = make("Alibaba went public in New York in 1999 [1]. Its net profit was $9 billion [2].")
    a = bot.ask(Q_IPO)
    assert "1999" not in a.text and "9 billion" not in a.text
    assert not a.abstained and "2014" in a.text  # replaced by the quoted supporting sentence


def test_stream_yields_text_then_the_final_answer(make):
    bot = make("Alibaba went public in New York in 2014 [1]. ")
    parts = list(bot.ask_stream(Q_IPO))
    assert isinstance(parts[-1], Answer)
    assert "".join(p for p in parts[:-1]) == parts[-1].text
    assert len(parts) >= 2 and "first_token" in parts[-1].timings


def test_followup_is_rewritten_with_the_previous_subject(make):
    bot = make("Forecasters expect a dry weekend [1].")
    history = [("What did forecasters say about the weather in the harbour city?", "A dry weekend [1].")]
    a = bot.ask("How much rain did it get?", history=history)
    assert a.standalone_question and "harbour city" in a.standalone_question
    assert a.retrieved[0].chunk.source == "weather.md"
    standalone = bot.ask("How much revenue did the Alibaba cloud business generate?", history=history)
    assert standalone.standalone_question is None


def test_session_documents_are_searched_only_in_their_session(make):
    bot = make("The ferry timetable changes on 3 May [1].")
    session = bot.add_document(None, "ferries.txt", b"The ferry timetable changes on 3 May. Boats leave hourly.")
    q = "When does the ferry timetable change?"
    with_doc = bot.ask(q, session=session)
    assert with_doc.citations and with_doc.citations[0].source == "session/ferries.txt"
    assert bot.document_text("session/ferries.txt", session).startswith("The ferry")
    without = bot.ask(q)
    assert all(h.chunk.source != "session/ferries.txt" for h in without.retrieved)
    with pytest.raises(CorpusError):
        bot.document_text("session/ferries.txt")


@pytest.mark.parametrize("name,data,msg", [
    ("a.pdf", b"%PDF-1.4", "only .txt and .md"),
    ("a.txt", b"\x00\x01binary", "binary"),
    ("a.txt", "café".encode("latin-1"), "UTF-8"),
    ("a.txt", b"   ", "empty"),
    ("a.txt", b"x" * 3_000_000, "limit"),
])
def test_bad_uploads_get_clear_errors(make, name, data, msg):
    with pytest.raises(CorpusError, match=msg):
        make().add_document(None, name, data)


def test_lcel_chain_is_the_same_pipeline(make):
    bot = make("Alibaba went public in New York in 2014 [1].")
    a = bot.chain.invoke({"question": Q_IPO})
    assert isinstance(a, Answer) and "2014" in a.text
