"""The reader: one interface (read, check, call) over the LLM backends, one file each, as simonw/llm's models are.

- base.Reader: any LangChain chat model, e.g. an OpenAI-compatible server's (vLLM, llama.cpp, a hosted API);
- local.LocalReader: the bundled GGUF in llama.cpp's in-process server, whose saved KV states it keeps;
- render: the text both are shown.
"""
from __future__ import annotations

from typing import Any

from ..settings import Settings
from .base import Reader, Reply, verdict
from .local import LocalReader

__all__ = ["LocalReader", "Reader", "Reply", "make_reader", "verdict"]


def make_reader(settings: Settings, model: Any = None) -> Reader:
    """The reader settings name (llm_backend), or one over `model` (a LangChain chat model) when given."""
    if model is None and settings.llm_backend == "local":
        return LocalReader(settings)
    return Reader(settings, model)
