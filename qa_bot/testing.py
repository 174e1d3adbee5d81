"""Test doubles that plug into QABot (like simonw/llm's MockModel): no model, no server, instant."""
from __future__ import annotations

from langchain_core.language_models.fake_chat_models import FakeListChatModel


class MockLLM(FakeListChatModel):
    """A LangChain chat model that replies with the given responses in turn and records every prompt
    it was sent, as [system text, user text]."""

    calls: int = 0
    prompts: list = []

    def _record(self, messages):
        self.calls += 1
        self.prompts = [*self.prompts, [str(m.content) for m in messages]]

    def _call(self, messages, *args, **kwargs):
        self._record(messages)
        return super()._call(messages, *args, **kwargs)

    def _stream(self, messages, *args, **kwargs):
        self._record(messages)
        yield from super()._stream(messages, *args, **kwargs)


def mock_bot(corpus_dir, cache_dir, responses=('{"answer": "", "sentence": 0}',), **settings):
    """A QABot over corpus_dir with the hashing embedder and a MockLLM (returned as bot.llm)."""
    from .embed import HashEmbedder
    from .pipeline import QABot
    from .settings import Settings

    s = Settings.from_env({}, corpus_dir=corpus_dir, cache_dir=cache_dir, **settings)
    return QABot(settings=s, llm=MockLLM(responses=list(responses)), embedder=HashEmbedder())
