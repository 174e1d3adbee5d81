"""QABot and the tests' FakeBot both satisfy qa_bot.Bot, the interface the edges use: the same members with
the same parameters, the same error types for the same faults, and `ask` is the end of `ask_stream`."""
import inspect

import pytest

from fakes import FakeBot

from qa_bot import Answer, AnswerStream, Bot
from qa_bot.errors import CorpusError, InvalidQuestion
from qa_bot.pipeline import QABot
from qa_bot.testing import mock_bot

MEMBERS = sorted(n for n in dir(Bot) if not n.startswith("_")) + ["settings"]


def test_the_protocol_names_what_the_edges_use():
    assert set(MEMBERS) == {"add_document", "ask", "ask_stream", "close", "document_text", "model_info", "refusal",
                            "remove_document", "retrieve", "session_documents", "settings", "warm_up"}


@pytest.mark.parametrize("name", [n for n in MEMBERS if callable(getattr(Bot, n, None))])
def test_same_parameters_as_the_protocol(name):
    want = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(Bot, name)).parameters.values()]
    for cls in (QABot, FakeBot):
        got = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(cls, name)).parameters.values()]
        assert got == want, f"{cls.__name__}.{name}"


@pytest.fixture(params=["QABot", "FakeBot"])
def bot(request, corpus, tmp_path):
    if request.param == "QABot":
        return mock_bot(corpus, tmp_path / "cache", responses=['{"answer": "2014", "sentence": 1}'])
    return FakeBot(corpus_dir=corpus)


def test_both_are_bots(bot):
    assert isinstance(bot, Bot)


def test_same_error_types(bot):
    with pytest.raises(CorpusError):
        bot.document_text("no_such_document.txt")
    with pytest.raises(CorpusError):
        bot.add_document(None, "big.txt", b"x" * (bot.settings.max_upload_bytes + 1))
    with pytest.raises(CorpusError):
        bot.add_document(None, "latin1.txt", "caf\xe9".encode("latin-1"))
    for bad in ("", "   ", "x" * (bot.settings.max_question_chars + 1)):
        with pytest.raises(InvalidQuestion):
            bot.ask(bad)


def test_added_documents_are_listed_and_removed(bot):
    s = bot.add_document(None, "notes.txt", b"The ferry leaves at noon.")
    assert bot.session_documents(s) == ["notes.txt"] and bot.session_documents(None) == []
    assert bot.remove_document(s, "notes.txt") is None
    with pytest.raises(CorpusError):
        bot.remove_document(s, "other.txt")


def test_ask_is_the_end_of_ask_stream(bot):
    stream = bot.ask_stream("When did Alibaba go public in New York?")
    assert isinstance(stream, AnswerStream)
    pieces = list(stream)
    assert all(isinstance(p, str) for p in pieces[:-1]) and isinstance(pieces[-1], Answer)
    assert not pieces[-1].abstained and pieces[-1].text.startswith("2014")
    assert stream.answer() is pieces[-1]  # drained: the stream holds its Answer
    assert "".join(pieces[:-1]).strip() == pieces[-1].text
    assert bot.ask("When did Alibaba go public in New York?").text == pieces[-1].text
