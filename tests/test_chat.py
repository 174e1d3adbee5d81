"""The browser chat's conversation (qa_bot.chat) and the handlers that drive it (qa_bot.ui.Handlers), without a
server: queueing, Stop closing the bot's stream, the one reset, citations of earlier answers, copy, regenerate,
and the history kept in the browser. Fast: the fake bot, no models."""
from __future__ import annotations

import copy
import re

import pytest
from types import SimpleNamespace

from fakes import FakeBot

from qa_bot.chat import DONE, ERROR, QUEUED, RUNNING, STOPPED, Conversation, Turn, citation_item, copy_text
from qa_bot.ui import Handlers, render_chat

Q1 = "When did Alibaba go public in New York?"
Q2 = "Who is the chairman and chief executive officer of Alibaba Group?"


def drain(gen):
    """Run a handler generator to its end; returns its last output."""
    out = None
    for out in gen:
        pass
    return out


def answering(question: str):
    """A fake bot in the middle of answering `question`: (bot, conversation, the run generator)."""
    bot, conv = FakeBot(), Conversation()
    h = Handlers(bot)
    h.submit(question, conv)
    run = h.run(conv, None)
    next(run)  # the turn starts
    next(run)  # the bot's stream is open
    return bot, conv, run


def chat_html(conv: Conversation) -> str:
    return " ".join(m["content"] for m in render_chat(conv.snapshot()))


def test_questions_are_answered_in_order_and_one_sent_mid_answer_is_queued():
    h, conv = Handlers(FakeBot()), Conversation()
    box, chat, _ = h.submit(Q1, conv)
    assert box == "" and len(chat) == 2 and "qa-queued" in chat[1]["content"]
    run = h.run(conv, None)
    next(run)  # Q1 is being answered
    assert [t.status for t in conv.snapshot()] == [RUNNING]
    h.submit(Q2, conv)  # sent while Q1 streams
    assert [t.status for t in conv.snapshot()] == [RUNNING, QUEUED]
    assert "qa-queued" in render_chat(conv.snapshot())[3]["content"]
    chat, items, sources, doc, saved = drain(run)  # the same run answers the queued question after Q1
    assert [t.status for t in conv.snapshot()] == [DONE, DONE]
    assert "2014" in chat[1]["content"] and "Zhang" in chat[3]["content"]
    assert items[0]["source"] and "data-highlight" in doc and len(saved) == 2


def test_empty_question_adds_nothing():
    conv = Conversation()
    Handlers(FakeBot()).submit("   ", conv)
    assert conv.snapshot() == []


def test_stop_closes_the_bots_stream_and_drops_queued_questions():
    bot = FakeBot()
    h, conv = Handlers(bot), Conversation()
    h.submit(Q1, conv)
    h.submit(Q2, conv)
    run = h.run(conv, None)
    next(run)
    next(run)  # Q1's first verified piece
    chat, saved = h.stop(conv)
    assert [t.status for t in conv.snapshot()] == [STOPPED, STOPPED] and "qa-stopped" in chat[1]["content"]
    run.close()  # what Gradio's cancel does to the event's generator
    assert bot.closed == [Q1]  # the bot's answer stream was closed, not left running
    assert [t["status"] for t in saved] == [STOPPED, STOPPED]


def test_stop_flag_alone_ends_the_answer_and_closes_the_stream():
    """Even if the event is not cancelled, the run loop sees the stopped turn and closes the bot's stream."""
    bot, conv, run = answering(Q1)
    conv.stop()
    drain(run)
    assert bot.closed == [Q1] and conv.snapshot()[0].status == STOPPED


def test_a_finished_answer_does_not_count_as_closed_early():
    bot = FakeBot()
    h, conv = Handlers(bot), Conversation()
    h.submit(Q1, conv)
    drain(h.run(conv, None))
    assert bot.closed == [] and conv.snapshot()[0].status == DONE


def test_errors_become_error_turns_without_details():
    h, conv = Handlers(FakeBot()), Conversation()
    h.submit("__crash__", conv)
    h.submit(Q1, conv)
    drain(h.run(conv, None))
    first, second = conv.snapshot()
    assert first.status == ERROR and "secret" not in first.text and second.status == DONE


def test_follow_up_memory_is_the_conversations_and_reset_forgets_it():
    h, conv = Handlers(FakeBot()), Conversation()
    h.submit("Tell me about Alibaba's cloud business.", conv)
    h.submit("How much revenue did it make?", conv)
    drain(h.run(conv, None))
    assert "searched for" in chat_html(conv) and "2.7 billion" in chat_html(conv)
    new, chat, items, sources, doc, note, saved = Handlers.reset(conv)
    assert (chat, items, saved, note) == ([], [], [], "") and "qa-empty" in sources and "data-highlight" not in doc
    assert new is not conv and new.snapshot() == [] and new.history() == []
    h.submit("How much revenue did it make?", new)
    drain(h.run(new, None))
    assert "searched for" not in chat_html(new)


def test_reset_stops_the_answer_being_written():
    bot, conv, run = answering(Q1)
    Handlers.reset(conv)
    drain(run)
    assert bot.closed == [Q1]


def test_citations_of_earlier_answers_open_their_own_sentence():
    h, conv = Handlers(FakeBot()), Conversation()
    for q in (Q1, Q2):
        h.submit(q, conv)
    drain(h.run(conv, None))
    first, second = conv.snapshot()
    markers = re.findall(r'class="qa-cite qa-cite-link qa-turn-(\d+) qa-n-(\d+)"', chat_html(conv))
    assert markers == [(str(first.id), "1"), (str(second.id), "1")]
    for turn in (second, first):
        doc = h.show_citation(conv, None, SimpleNamespace(_data={"turn": turn.id, "n": 1}))
        highlighted = re.search(r"<span data-highlight=\"\">(.*?)</span>", doc).group(1)
        assert highlighted == citation_item(turn, 1)["text"]  # no markup in these sentences
    assert "2014" in citation_item(first, 1)["text"] and "Zhang" in citation_item(second, 1)["text"]
    same = [h.show_citation(conv, None, SimpleNamespace(_data={"turn": first.id, "n": 1})) for _ in range(2)]
    assert same[0] != same[1]  # selecting it again re-renders, so the viewer scrolls the highlight back
    assert not isinstance(h.show_citation(conv, None, SimpleNamespace(_data={"turn": first.id, "n": 9})), str)
    assert citation_item(first, 9) is None and citation_item(None, 1) is None


def test_copy_text_gives_the_answer_and_its_cited_sentences():
    items = ({"n": 1, "source": "a.txt", "start": 0, "end": 9, "text": "It listed in 2014. ", "cited": True},
             {"n": 2, "source": "b.txt", "start": 0, "end": 5, "text": "Other", "cited": False})
    out = copy_text(Turn(0, "When?", DONE, "2014 [1]", items=items))
    assert out == "2014 [1]\n\nSources:\n[1] “It listed in 2014.” (a.txt)"
    refusal = Turn(0, "When?", DONE, "The article does not say.", items=items[1:])  # closest passages only
    assert copy_text(refusal) == "The article does not say."


def test_regenerate_replaces_the_last_answer_and_waits_while_answering():
    h, conv = Handlers(FakeBot()), Conversation()
    h.submit(Q1, conv)
    drain(h.run(conv, None))
    h.regenerate(conv)
    assert [(t.question, t.status) for t in conv.snapshot()] == [(Q1, QUEUED)]
    run = h.run(conv, None)
    next(run)
    assert conv.take_last_question() is None  # nothing is taken while an answer is being written
    drain(run)
    assert [t.status for t in conv.snapshot()] == [DONE]


def test_history_round_trips_through_the_browser_copy():
    h, conv = Handlers(FakeBot()), Conversation()
    h.submit(Q1, conv)
    *_, saved = drain(h.run(conv, None))
    restored = Conversation()
    chat, items, sources = Handlers.restore(saved, restored)
    assert [t.to_json() for t in restored.snapshot()] == saved and chat == render_chat(conv.snapshot())
    assert items and "qa-cited" in sources
    assert restored.history() == conv.history()
    assert restored.enqueue("next").id > conv.snapshot()[-1].id  # ids keep growing: old markers stay unique
    half = dict(saved[0], status=RUNNING)  # reloaded mid-answer: shown as stopped, not resumed
    assert Conversation.from_json([half]).snapshot()[0].status == STOPPED
    for junk in (None, "x", [1, {"id": "no"}], [{"question": "q"}]):  # unreadable: an empty chat, no error
        assert Conversation.from_json(junk).snapshot() == []


def test_each_session_gets_its_own_empty_conversation():
    conv = Conversation()
    conv.enqueue("q")
    fresh = copy.deepcopy(conv)  # what gr.State does with its initial value for each session
    assert fresh is not conv and fresh.snapshot() == []


def test_stages_are_shown_until_the_verified_text_arrives():
    from qa_bot import Stage
    from qa_bot.ui import stage_label

    assert stage_label(Stage("reading", 3)) == "Reading 3 passages…"
    assert stage_label(Stage("reading", 1)) == "Reading 1 passage…"
    assert "Checking" in stage_label(Stage("checking"))
    assert stage_label(Stage("reading again", 3)) == "Reading the next passages…"
    h, conv = Handlers(FakeBot()), Conversation()
    h.submit(Q1, conv)
    seen = [out[0][1]["content"] for out in h.run(conv, None)]
    assert "Searching the documents" in seen[0]
    stages = [re.search(r'class="qa-stage">([^<]*)<', b).group(1) for b in seen if "qa-stage" in b]
    assert stages == ["Searching the documents…", "Reading 3 passages…",
                      "Checking the answer against its source…"]


def test_answer_stream_reports_stages_only_through_events(corpus, tmp_path):
    """QABot's own answer path reports reading (with the passage count) and checking; plain iteration (API,
    CLI, LangChain) sees only text and the Answer."""
    from qa_bot import Answer, Stage
    from fakes import read, scripted_bot

    bot = scripted_bot(corpus, tmp_path / "c", default=read("2014"))
    question = "When did Alibaba's listing in New York happen?"  # "listing" is not in the sentence: checked
    events = list(bot.ask_stream(question).events())
    stages = [e for e in events if isinstance(e, Stage)]
    assert stages[0] == Stage("reading", len(events[-1].retrieved)) and stages[0].passages > 0
    assert Stage("checking") in stages and isinstance(events[-1], Answer) and not events[-1].abstained
    plain = list(bot.ask_stream(question))
    assert not any(isinstance(e, Stage) for e in plain) and plain[-1].text == events[-1].text


def test_a_chat_may_have_only_a_few_questions_waiting_and_keeps_the_extra_one_in_the_box():
    from qa_bot.chat import MAX_QUEUED

    h, conv = Handlers(FakeBot()), Conversation()
    for i in range(MAX_QUEUED):
        assert h.submit(f"question {i}?", conv)[0] == ""
    with pytest.warns(UserWarning, match="already waiting"):  # gr.Warning: a toast in the page
        box, chat, _ = h.submit("one too many?", conv)
    assert not isinstance(box, str) and len(conv.snapshot()) == MAX_QUEUED  # skipped: the box keeps its text


def test_a_question_sent_before_the_restore_arrives_is_kept_after_the_restored_chat():
    h, old = Handlers(FakeBot()), Conversation()
    h.submit(Q1, old)
    *_, saved = drain(h.run(old, None))
    conv = Conversation()  # the reloaded page: a question is sent before the browser's copy is restored
    h.submit(Q2, conv)
    chat, items, sources = Handlers.restore(saved, conv)
    assert [t.question for t in conv.snapshot()] == [Q1, Q2] and len(chat) == 4
    assert not isinstance(items, list)  # the newer question's sources are not replaced by the old answer's
    drain(h.run(conv, None))
    assert [t.status for t in conv.snapshot()] == [DONE, DONE] and conv.history()[0][0] == Q1
    assert not isinstance(Handlers.restore(saved, conv)[0], list)  # restoring twice adds nothing


def test_the_chats_filter_reaches_the_library_and_a_filter_matching_nothing_is_the_answers_message():
    bot = FakeBot()
    h, conv = Handlers(bot), Conversation()
    h.submit(Q1, conv)
    drain(h.run(conv, None, "no_such_file.txt", "", ""))
    assert conv.snapshot()[-1].status == ERROR and "no document matches --source no_such_file.txt" in conv.snapshot()[-1].text
    h.submit(Q1, conv)
    drain(h.run(conv, None, "", "2023-13-40", ""))  # not a date: the library's message names the field
    assert conv.snapshot()[-1].status == ERROR and "--since" in conv.snapshot()[-1].text
    h.submit(Q1, conv)
    drain(h.run(conv, None, "alibaba_cloud_spinoff.txt", " ", ""))  # the article itself; blank fields are no filter
    assert conv.snapshot()[-1].status == DONE and "2014" in conv.snapshot()[-1].text
