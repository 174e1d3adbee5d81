"""The local server's saved KV cache of the fixed prompts (LLMProvider.save_primed / LocalLlamaServer.restore_state),
with the real default reader on llama.cpp's server: a restart loads it instead of reading the prompts again, and a
damaged file only means they are read again."""
from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from qa_bot import QABot, Settings, prompts
from qa_bot.llm import STALE_TMP_SECONDS, prune_states
from qa_bot.pipeline import WHOLE_PRIMER
from qa_bot.reader.render import whole_text
from qa_bot.weights import model_path

from conftest import CORPUS, TEST_LLM_TIMEOUT

pytestmark = pytest.mark.slow  # the real default reader on llama.cpp


def _own_settings(tmp_path_factory, **changes) -> Settings:
    # The verified reader by path, so this test's saved states go to its own model_cache_dir, not the shared one.
    gguf = model_path(Settings().reader, Settings().model_cache_dir)
    return Settings.from_env({}, corpus_dir=CORPUS, cache_dir=tmp_path_factory.mktemp("cache"),
                             model_cache_dir=tmp_path_factory.mktemp("models"), gguf_path=str(gguf),
                             **{"llm_timeout": TEST_LLM_TIMEOUT, **changes})


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return _own_settings(tmp_path_factory)


def _state_files(settings):
    d = settings.model_cache_dir / "llama-state"
    return sorted(d.glob("slot-*.bin")) if d.is_dir() else []


def _record_restores(bot) -> list[bool]:
    """What each load of a saved state by `bot` returned, in order (the loads still happen)."""
    loaded: list[bool] = []
    restore = bot.reader.provider.restore
    bot.reader.provider.restore = lambda tag: loaded.append(restore(tag)) or loaded[-1]
    return loaded


def _reader_prime_cached_tokens(bot, sentences: str = prompts.SENTENCE_LINE.format(n=1, text="-")) -> int:
    """Post a reader prompt straight to the server; llama.cpp reports how many of its tokens it reused."""
    server = bot.reader.provider._server
    body = {"model": server.alias, "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "system", "content": prompts.READER_SYSTEM},
                         {"role": "user", "content": prompts.READER_USER.format(sentences=sentences, question="-")}]}
    req = urllib.request.Request(server.base_url + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())["timings"]["cache_n"]


def test_a_restart_loads_the_saved_prompt_cache_instead_of_reading_the_prompts(settings):
    assert _state_files(settings) == []
    with QABot(settings=settings) as first:
        first.warm_up()
        files = _state_files(settings)
        # One per slot after the fixed prompts, and one per slot after the article read whole behind them.
        assert len(files) == 4 and all(f.stat().st_size > 100_000 for f in files)
        answer = first.ask("When did Alibaba go public in New York?")
        p = first.prepare(WHOLE_PRIMER, (), None)
        whole = whole_text(p.sentences, p.several)

    with QABot(settings=settings) as second:
        second.llm  # starts the server: the saved state is loaded now, before any prompt
        assert second.reader.provider.primed
        assert _reader_prime_cached_tokens(second) > 100  # the fixed instructions came from the file, not a reading
        second.warm_up()  # loads the state saved after the article: the article is not read again
        assert _reader_prime_cached_tokens(second, whole) > 800  # the article is ~850 tokens
        again = second.ask("When did Alibaba go public in New York?")
        assert not again.abstained and again.citations == answer.citations
    assert _state_files(settings) == files  # loading never rewrites them


def test_a_damaged_saved_state_is_read_again_and_replaced(settings):
    files = _state_files(settings)
    if not files:  # run alone: make them first
        with QABot(settings=settings) as bot:
            bot.warm_up()
        files = _state_files(settings)
    sizes = {f.name: f.stat().st_size for f in files}
    for f in files:
        f.write_bytes(f.read_bytes()[:1000])  # cut short, as by a full disk
    with QABot(settings=settings) as bot:
        bot.warm_up()  # no error: the prompts are read again
        a = bot.ask("When did Alibaba go public in New York?")
        assert not a.abstained and a.citations
    # each damaged state saved whole again (a question may add the state of the document it read whole)
    assert {f.name: f.stat().st_size for f in _state_files(settings) if f.name in sizes} == sizes


def test_the_saved_state_is_named_by_the_prompts_it_holds():
    assert prompts.prefix_tag(True) != prompts.prefix_tag(False)
    assert prompts.prefix_tag(True) == prompts.prefix_tag(True)


def test_a_question_asked_without_a_warm_up_loads_the_saved_article_instead_of_reading_it(settings):
    # QABot().ask, or a question app.py answers while it is still warming up: the saved state of the article
    # read whole is loaded before the question is read, not read again by the question (~11 s on 2 cores).
    with QABot(settings=settings) as bot:
        bot.warm_up()  # saves the states, if no earlier test did
    files = _state_files(settings)
    with QABot(settings=settings) as bot:
        loaded = _record_restores(bot)
        a = bot.ask("When did Alibaba go public in New York?")
        assert not a.abstained and loaded == [True]
        bot.ask("Who is Alibaba's chairman?")
        assert loaded == [True]  # once per process
    assert _state_files(settings) == files


def _fake_state(d, digest, sizes, used):
    for slot, size in enumerate(sizes):
        f = d / f"slot-{digest}-{slot}.bin"
        f.write_bytes(b"\0" * size)
        os.utime(f, (used, used))


def test_saved_states_past_the_budget_go_least_recently_used_first_each_with_all_its_slots(tmp_path):
    now = time.time()
    _fake_state(tmp_path, "a" * 24, (300, 700), now - 10)  # used last: kept
    _fake_state(tmp_path, "b" * 24, (300, 700), now - 20)  # kept: 2,000 bytes so far
    _fake_state(tmp_path, "c" * 24, (100, 100), now - 30)  # past the budget with it: goes, and so does all older
    _fake_state(tmp_path, "d" * 24, (10, 10), now - 40)
    (tmp_path / f"slot-{'e' * 24}-0.bin.123.456.tmp").write_bytes(b"x")  # being written by a live process
    stale = tmp_path / f"slot-{'f' * 24}-0.bin.7.8.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (now - STALE_TMP_SECONDS - 1,) * 2)  # left by a process that died mid-save
    (tmp_path / "notes.txt").write_text("not ours")

    gone = prune_states(tmp_path, 2000)
    assert sorted(gone) == sorted([f"slot-{'c' * 24}-0.bin", f"slot-{'c' * 24}-1.bin", f"slot-{'d' * 24}-0.bin",
                                   f"slot-{'d' * 24}-1.bin", stale.name])
    assert sorted(p.name[5:6] for p in tmp_path.glob("slot-*.bin")) == ["a", "a", "b", "b"]
    assert (tmp_path / "notes.txt").exists() and len(list(tmp_path.glob("*.tmp"))) == 1

    # The state just saved stays whatever its size; the budget then leaves room for nothing else.
    _fake_state(tmp_path, "0" * 24, (5000, 5000), now - 100)
    prune_states(tmp_path, 2000, keep="0" * 24)
    assert sorted(p.name[5:6] for p in tmp_path.glob("slot-*.bin")) == ["0", "0"]


def test_a_disk_budget_keeps_the_state_last_saved_and_a_new_process_still_loads_it(tmp_path_factory):
    # 1 MB holds no state of the 1.5B reader (3-41 MB): the warm-up's first save (the fixed prompts) is pruned
    # when the article read whole behind them is saved; that one stays, and the next process loads it.
    settings = _own_settings(tmp_path_factory, llm_state_mb=1)
    with QABot(settings=settings) as bot:
        bot.warm_up()
    files = _state_files(settings)
    assert len(files) == 2  # one state, one file per slot (4 without the budget: see the restart test above)
    with QABot(settings=settings) as bot:
        loaded = _record_restores(bot)
        a = bot.ask("When did Alibaba go public in New York?")
        assert not a.abstained and loaded == [True]
    assert _state_files(settings) == files


def test_no_disk_budget_saves_no_state(tmp_path_factory):
    settings = _own_settings(tmp_path_factory, llm_state_mb=0)
    with QABot(settings=settings) as bot:
        bot.warm_up()
        assert not bot.ask("When did Alibaba go public in New York?").abstained
    assert _state_files(settings) == []
