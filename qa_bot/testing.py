"""Test doubles that plug into QABot (like simonw/llm's MockModel): no model, no server, instant.

- HashEmbedder: bag-of-words hashed into a fixed-size vector, in place of the sentence-transformers model.
- MockLLM: a LangChain chat model that replies from a list and records every prompt it was sent.
- mock_bot: a real QABot over a folder with both.
- ReplayLLM: a LangChain chat model that answers each prompt with the reply recorded for it (and records, with a
  real model behind it): the same replies give the same predictions, whatever the code between them.
"""
from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

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


class UnrecordedPrompt(KeyError):
    """ReplayLLM was sent a prompt it holds no reply for: the code sends the reader something new."""


def reply_key(messages, kwargs: dict) -> str:
    """One prompt's identity: every message's text and the call's options (JSON schema, stop, logprobs)."""
    import json

    body = [[type(m).__name__, str(m.content)] for m in messages]
    return hashlib.sha256(json.dumps([body, kwargs], sort_keys=True, default=str).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _replay_llm_class():
    import json
    from pathlib import Path

    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class ReplayLLM(BaseChatModel):
        """Answers each prompt with the reply recorded for it in `path` (JSON lines: key, text, metadata). With
        `model` (a real chat model), a prompt not recorded yet is sent to it and its reply appended; without,
        such a prompt raises UnrecordedPrompt."""

        path: str
        model: Any = None  # a LangChain chat model; Any, so that pydantic takes it as given
        replies: dict = {}
        sent: int = 0  # prompts answered, recorded or not

        def model_post_init(self, _context) -> None:
            file = Path(self.path)
            rows = [json.loads(x) for x in file.read_text(encoding="utf-8").splitlines()] if file.exists() else []
            self.replies = {r["key"]: r for r in rows}

        @property
        def _llm_type(self) -> str:
            return "replay"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            options = {**kwargs, **({"stop": list(stop)} if stop else {})}
            key = reply_key(messages, options)
            self.sent += 1
            if key not in self.replies:
                if self.model is None:
                    raise UnrecordedPrompt(f"no recorded reply for this prompt: {str(messages[-1].content)[:300]!r}")
                msg = self.model.bind(**options).invoke(messages)
                meta = {k: v for k, v in (msg.response_metadata or {}).items() if k in ("logprobs", "finish_reason")}
                row = {"key": key, "text": str(msg.content), "metadata": meta}
                with Path(self.path).open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                self.replies[key] = row
            row = self.replies[key]
            message = AIMessage(row["text"], response_metadata=row["metadata"])
            return ChatResult(generations=[ChatGeneration(message=message)])

    ReplayLLM.__module__ = __name__
    return ReplayLLM


def __getattr__(name):  # langchain-core (~1 s) is imported only when one of its models is used
    if name == "MockLLM":
        return _mock_llm_class()
    if name == "ReplayLLM":
        return _replay_llm_class()
    raise AttributeError(name)


def mock_bot(corpus_dir, cache_dir, responses=('{"answer": "", "sentence": 0}',), **settings):
    """A QABot over corpus_dir with the hashing embedder and a MockLLM (returned as bot.llm)."""
    from .pipeline import QABot
    from .settings import Settings

    s = Settings.from_env({}, corpus_dir=corpus_dir, cache_dir=cache_dir, **settings)
    return QABot(settings=s, llm=_mock_llm_class()(responses=list(responses)), embedder=HashEmbedder())
