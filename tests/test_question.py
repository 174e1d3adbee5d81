"""question.normalise, the one check of what a user asks, and the faces that call it: the CLI, the chat's question
box, Gradio's /ask and the OpenAI-compatible API refuse the same inputs with the library's own words, each in its
own frame, and hand on the same cleaned text. Fast: no models, no server."""
from __future__ import annotations

import pytest

from fakes import FakeBot

from qa_bot import Settings
from qa_bot.api_format import QUESTION, ApiError, parse_chat_request
from qa_bot.chat import Conversation
from qa_bot.errors import InvalidQuestion
from qa_bot.question import QuestionTooLong, clean_history, clean_question, normalise, sentence
from qa_bot.ui import Handlers

LIMIT = Settings.max_question_chars
BAD = {  # text -> what the library says about it
    "too long": (" ".join(["When did Alibaba go public?"] * 100),
                 f"the question is too long (2,799 characters; the limit is {LIMIT:,})"),
    "invisible only": ("\u200b\u200c\x1b\u202e", "the question is empty"),
    "no words": ("😀🔥 ?!", "the question has no words in it"),
}


def test_normalise_is_clean_question_and_clean_history_under_the_settings_limit():
    history = [("  Who runs\tit?\u200b ", "Daniel Zhang."), ("\x1b\u202e", "dropped: a blank question"), ("When?", 7)]
    question, turns = normalise(" When did\nAlibaba \x07go public? ", history, Settings())
    assert question == clean_question(" When did\nAlibaba \x07go public? ", LIMIT) == "When did Alibaba go public?"
    assert turns == clean_history(history, LIMIT) == (("Who runs it?", "Daniel Zhang."), ("When?", ""))
    assert normalise(question, turns) == (question, turns)  # idempotent: the library may clean it again
    assert normalise("Why?") == ("Why?", ())
    small = Settings.from_env({}, max_question_chars=100)
    with pytest.raises(QuestionTooLong, match="limit is 100"):
        normalise("x" * 101, None, small)
    with pytest.raises(QuestionTooLong, match="history turn 2 is too long"):
        normalise("Why?", [("Who?", "a"), ("y" * 101, "b")], small)


@pytest.mark.parametrize("case", list(BAD))
def test_only_an_over_long_question_is_question_too_long(case):
    text, message = BAD[case]
    with pytest.raises(InvalidQuestion) as e:
        normalise(text)
    assert str(e.value) == message and isinstance(e.value, QuestionTooLong) == (case == "too long")
    assert sentence(e.value) == message[0].upper() + message[1:] + "."


@pytest.mark.parametrize("case", list(BAD))
def test_every_face_refuses_with_the_librarys_words(case, capsys, monkeypatch):
    text, message = BAD[case]
    # CLI: the message as it is, after the command's prefix, before any model is built.
    from qa_bot import cli, pipeline

    monkeypatch.setattr(pipeline, "QABot", lambda *a, **k: pytest.fail("a model was built for a refused question"))
    assert cli.main(["ask", text]) == 2
    assert capsys.readouterr().err == f"qa-bot: error: {message}\n"
    # The OpenAI-compatible API: a 400 whose message is the same refusal as a sentence, naming the message.
    with pytest.raises(ApiError) as e:
        parse_chat_request({"messages": [{"role": "user", "content": text}]}, Settings())
    assert (e.value.status, e.value.param) == (400, "messages")
    assert e.value.message == sentence(InvalidQuestion(message.replace("the question", QUESTION, 1)))
    # The chat: the question stays in the box, the note under it says why; advice only where there is some.
    bot, conv = FakeBot(), Conversation()
    box, chat, note = Handlers(bot).submit(text, conv)
    assert conv.snapshot() == [] and not isinstance(box, str) and not isinstance(chat, list)
    said = sentence(InvalidQuestion(message))
    assert (said[:-1] + ": shorten it and send it again." if case == "too long" else said) in note
    # Gradio's /ask: the library's message, and the bot never asked.
    import gradio as gr

    with pytest.raises(gr.Error) as g:
        Handlers(bot).ask(text)
    assert g.value.message == message and bot.calls == []


def test_faces_hand_the_bot_the_normalised_question_and_history():
    raw, history = " When did\tAlibaba go public\u200b in New York? ", [[" Who is the CEO?\x1b ", "Daniel Zhang."]]
    question, turns = normalise(raw, history)
    body = {"messages": [{"role": "user", "content": history[0][0]}, {"role": "assistant", "content": history[0][1]},
                         {"role": "user", "content": raw}], "stream": True}
    assert parse_chat_request(body, Settings()) == (question, turns, True)
    bot = FakeBot()
    Handlers(bot).ask(raw, history)
    assert bot.calls == [question]
