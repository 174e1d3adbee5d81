"""Test doubles that plug into QABot (like simonw/llm's MockModel): no model, no server, instant.

- HashEmbedder: bag-of-words hashed into a fixed-size vector, in place of the sentence-transformers model.
- MockLLM: a LangChain chat model that replies from a list and records every prompt it was sent.
- mock_bot: a real QABot over a folder with both.
"""
from __future__ import annotations

import functools
import hashlib
import re

import numpy as np

_TOKEN = re.compile(r"\w+")


class HashEmbedder:
    """Bag-of-words hashed into a fixed-size vector: deterministic, instant, no model. Satisfies
    qa_bot.index.Embedder like the real model does."""

    name = "hash-embedder"
    fingerprint = "hash-embedder:v1"

    def __init__(self, dim: int = 256):
        self.dim = dim

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text)) + 2  # + [CLS] and [SEP], as the real tokenizer counts

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _TOKEN.findall(t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out


@functools.lru_cache(maxsize=1)
def _mock_llm_class():
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

    MockLLM.__module__ = __name__
    return MockLLM


def __getattr__(name):  # MockLLM is a LangChain model: langchain-core (~1 s) is imported only when it is used
    if name == "MockLLM":
        return _mock_llm_class()
    raise AttributeError(name)


def mock_bot(corpus_dir, cache_dir, responses=('{"answer": "", "sentence": 0}',), **settings):
    """A QABot over corpus_dir with the hashing embedder and a MockLLM (returned as bot.llm)."""
    from .pipeline import QABot
    from .settings import Settings

    s = Settings.from_env({}, corpus_dir=corpus_dir, cache_dir=cache_dir, **settings)
    return QABot(settings=s, llm=_mock_llm_class()(responses=list(responses)), embedder=HashEmbedder())
