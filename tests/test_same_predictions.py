"""scripts/same_predictions.py and qa_bot.testing.ReplayLLM: the same reader replies give the same predictions,
and a change of what the reader is shown, or of what is made of its reply, is reported (fast: hashing embedder,
a MockLLM as the "real" reader behind the recording)."""
import importlib.util
import json
from pathlib import Path

import pytest

from qa_bot import QABot, Settings
from qa_bot.eval import run_eval
from qa_bot.testing import HashEmbedder, MockLLM, ReplayLLM, UnrecordedPrompt

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("same_predictions", ROOT / "scripts" / "same_predictions.py")
same = importlib.util.module_from_spec(spec)
spec.loader.exec_module(same)

QUESTIONS = [
    {"id": "a", "question": "When did Alibaba go public in New York?", "answers": ["2014"], "answerable": True,
     "evidence": "Alibaba went public in New York back in 2014", "source": "alibaba_cloud_spinoff.txt"},
    {"id": "b", "question": "Who is the CEO of Tesla?", "answers": [], "answerable": False},
]


def _run(corpus, cache, llm, out, **settings):
    s = Settings.from_env({}, corpus_dir=corpus, cache_dir=cache, **settings)
    bot = QABot(settings=s, llm=llm, embedder=HashEmbedder())
    run_eval(out.parent / "q.jsonl", bot=bot, corpus_dir=corpus, out_dir=out, progress=False)
    return out / "predictions.jsonl"


@pytest.fixture
def recorded(small_corpus, tmp_path):
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    real = MockLLM(responses=['{"answer": "2014", "sentence": 1}', '{"verdict": "yes"}',
                              '{"answer": "", "sentence": 0}'] * 3)
    replies = tmp_path / "replies.jsonl"
    before = _run(small_corpus, tmp_path / "cache", ReplayLLM(path=str(replies), model=real), tmp_path / "before")
    return small_corpus, tmp_path, replies, before, real


def test_replaying_the_recorded_replies_gives_the_same_predictions(recorded):
    corpus, tmp, replies, before, real = recorded
    assert real.calls >= 3 and len(replies.read_text().splitlines()) == real.calls  # each prompt recorded once
    replay = ReplayLLM(path=str(replies))
    after = _run(corpus, tmp / "cache", replay, tmp / "after")
    assert replay.sent >= real.calls
    assert same.differences(before, after) == []
    assert json.loads(before.read_text().splitlines()[0])["answer"].startswith("2014")


def test_a_prompt_the_recording_never_sent_is_refused_by_the_replay(recorded):
    corpus, tmp, replies, before, _ = recorded
    replay = ReplayLLM(path=str(replies))
    after = _run(corpus, tmp / "cache", replay, tmp / "after", reader_whole=False, reader_tokens=0, reader_sentences=1)  # fewer shown
    diff = same.differences(before, after)
    assert any(line.startswith("a: answer:") for line in diff) and any("no recorded reply" in x for x in diff), diff
    with pytest.raises(UnrecordedPrompt):
        replay.invoke("a prompt nobody sent")


def test_a_change_made_to_the_reply_is_reported_field_by_field(recorded, monkeypatch):
    corpus, tmp, replies, before, _ = recorded
    from qa_bot import cite

    monkeypatch.setattr(cite, "sentence_case", lambda a: a + "!")
    after = _run(corpus, tmp / "cache", ReplayLLM(path=str(replies)), tmp / "after")
    diff = same.differences(before, after)
    assert [line.split(":")[:2] for line in diff] == [["a", " answer"]], diff
