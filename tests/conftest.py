"""Shared fixtures. `real_bot` is the product as shipped: the bundled MiniLM embedder, a FAISS index and BM25 in
a temporary cache, and the default reader (Qwen2.5-Coder-1.5B-Instruct, joined and hash-verified once in
Settings.model_cache_dir) through llama.cpp's server on 127.0.0.1; about 2-5 s a question on 2 cores, so tests
ask it few questions. One instance serves a whole run."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "docs_corpus"
# The real reader's deadline in tests: answers are checked, not timed (benchmarks time them); on a busy machine a
# question can take minutes, which must give a slow pass, not a failure. QA_BOT_TEST_LLM_TIMEOUT raises it further.
TEST_LLM_TIMEOUT = float(os.environ.get("QA_BOT_TEST_LLM_TIMEOUT", "900"))
ARTICLE = CORPUS / "alibaba_cloud_spinoff.txt"
# Browser tests wait for what the page shows; each wait's seconds, written for a quiet machine, are multiplied by
# this (QA_BOT_TEST_BROWSER_WAIT_SCALE): a busy machine renders slowly, which must give a slow pass, not a failure.
BROWSER_WAIT_SCALE = float(os.environ.get("QA_BOT_TEST_BROWSER_WAIT_SCALE", "4"))


HEAVY_MARKS = {"slow", "browser", "soak"}


@pytest.fixture(autouse=True, scope="session")
def _patient_browser_waits():
    """Every Selenium wait scaled by BROWSER_WAIT_SCALE (a wait ends as soon as its condition holds, so a quiet
    machine loses nothing)."""
    try:
        from selenium.webdriver.support import wait
    except ImportError:  # the browser tests skip themselves without selenium
        yield
        return
    original = wait.WebDriverWait.__init__

    def scaled(self, driver, timeout, *args, **kwargs):
        original(self, driver, timeout * BROWSER_WAIT_SCALE, *args, **kwargs)

    wait.WebDriverWait.__init__ = scaled
    yield
    wait.WebDriverWait.__init__ = original


@pytest.fixture(autouse=True)
def _only_marked_tests_start_the_reader(request, monkeypatch):
    """The fast suite (a plain `pytest`) never starts llama.cpp: a test that would, unmarked, fails at once saying
    to mark it slow, instead of loading the 1.5B reader for minutes on a busy machine."""
    if HEAVY_MARKS & {m.name for m in request.node.iter_markers()}:
        return
    from qa_bot import llm

    def refuse(*args, **kwargs):
        pytest.fail("this test starts the real reader (llama.cpp): mark it @pytest.mark.slow", pytrace=False)

    monkeypatch.setattr(llm.LocalLlamaServer, "__init__", refuse)


@pytest.fixture(scope="session")
def real_bot(tmp_path_factory):
    from qa_bot import QABot, Settings

    bot = QABot(settings=Settings.from_env(corpus_dir=CORPUS, cache_dir=tmp_path_factory.mktemp("cache"),
                                              llm_timeout=TEST_LLM_TIMEOUT))
    yield bot
    bot.close()


@pytest.fixture
def corpus(tmp_path):
    """A copy of the article alone, in a fresh folder the test may change."""
    d = tmp_path / "corpus"
    d.mkdir()
    shutil.copy(ARTICLE, d / ARTICLE.name)
    return d


@pytest.fixture
def small_corpus(tmp_path):
    """A copy of the article plus a second short document, in a fresh folder."""
    d = tmp_path / "corpus"
    d.mkdir()
    shutil.copy(ARTICLE, d / ARTICLE.name)
    (d / "weather.md").write_text(
        "# Weather\n\nThe harbour city recorded 31 millimetres of rain on Tuesday. "
        "Forecasters expect a dry weekend with highs of 24 degrees.\n",
        encoding="utf-8",
    )
    return d
