"""The OpenAI-compatible path: a real llama.cpp server (xllamacpp) started by the test on 127.0.0.1, and
QABot pointed at it by settings alone, as it would be at vLLM or Ollama. The server runs the fast packaged
reader (SmolLM2-135M): this checks the plumbing (JSON-schema replies, the check, API key), not the reader."""
import socket

import pytest

from qa_bot import QABot, Settings
from qa_bot.errors import BackendError
from qa_bot.llm import LLMProvider, LocalLlamaServer
from qa_bot.weights import model_path

from conftest import CORPUS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    gguf = model_path("smollm2-135m", Settings().model_cache_dir)
    assert gguf == LLMProvider(Settings(reader="smollm2-135m")).gguf() and gguf.is_file()
    s = LocalLlamaServer(gguf, alias="smollm2-135m")
    assert s.base_url.startswith("http://127.0.0.1:")
    yield s
    s.close()


def test_answers_through_a_separate_openai_compatible_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "secret-not-checked-by-llama.cpp")
    env = {"QA_BOT_LLM_BACKEND": "openai", "QA_BOT_LLM_BASE_URL": server.base_url,
           "QA_BOT_LLM_MODEL": "smollm2-135m", "QA_BOT_LLM_API_KEY_ENV": "MY_LLM_KEY"}
    settings = Settings.from_env(env, corpus_dir=CORPUS, cache_dir=tmp_path)
    with QABot(settings=settings) as bot:
        assert bot.llm.openai_api_key.get_secret_value() == "secret-not-checked-by-llama.cpp"
        a = bot.ask("Who is the chairman and chief executive officer of Alibaba Group?")
        assert not a.abstained and "Daniel Zhang" in a.text and a.citations
        assert a.text.endswith("[1]") and len(a.text.split()) <= 6, a.text  # a short answer
        text = (CORPUS / a.citations[0].source).read_text(encoding="utf-8")
        c = a.citations[0]
        assert text[c.start:c.end] == c.text and "Daniel Zhang" in c.text
        assert bot.model_info() == {"backend": "openai", "model": "smollm2-135m", "base_url": server.base_url}


def test_refused_connection_is_a_clear_backend_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    settings = Settings.from_env({}, corpus_dir=CORPUS, cache_dir=tmp_path, llm_backend="openai",
                                 llm_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout=5, llm_max_retries=0)
    with QABot(settings=settings) as bot, pytest.raises(BackendError, match="cannot reach"):
        bot.ask("When did Alibaba go public in New York?")
