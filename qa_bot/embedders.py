"""The embedder the settings name, from one of the two embedding backends (embed.py: sentence-transformers in
torch; embed_onnx.py: the int8 ONNX export, the default), each imported only when chosen."""
from __future__ import annotations

from .index import Embedder
from .settings import Settings


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name: the int8 ONNX model ("onnx-int8", embed_onnx.py), or sentence-transformers
    in torch at a precision ("fp32", "bf16", "auto", "int8")."""
    s = settings
    if s.embed_precision == "onnx-int8":
        from .embed_onnx import OnnxInt8Embedder

        return OnnxInt8Embedder(s.embedding_model, cache_dir=s.model_cache_dir, threads=s.torch_threads,
                                batch_size=s.embed_batch_size)
    from .embed import SentenceTransformerEmbedder, resolve_precision

    precision = resolve_precision(s.embed_precision)
    return SentenceTransformerEmbedder(s.embedding_model, threads=s.torch_threads, batch_size=s.embed_batch_size,
                                       quantize=None if precision == "fp32" else precision)
