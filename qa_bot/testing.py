"""Test doubles that plug into QABot (like simonw/llm's MockModel): no model, no server, instant."""
from __future__ import annotations

from langchain_core.language_models.fake_chat_models import FakeListChatModel


class MockLLM(FakeListChatModel):
    """A LangChain chat model that replies with the given responses in turn and counts its calls."""

    calls: int = 0

    def _call(self, *args, **kwargs):
        self.calls += 1
        return super()._call(*args, **kwargs)

    def _stream(self, *args, **kwargs):
        self.calls += 1
        yield from super()._stream(*args, **kwargs)


def mock_bot(corpus_dir, cache_dir, responses=("I do not know.",), **settings):
    """A QABot over corpus_dir with the hashing embedder and a MockLLM (returned as bot.llm)."""
    from .embed import HashEmbedder
    from .pipeline import QABot
    from .settings import Settings

    s = Settings.from_env({}, corpus_dir=corpus_dir, cache_dir=cache_dir, **settings)
    return QABot(settings=s, llm=MockLLM(responses=list(responses)), embedder=HashEmbedder())
