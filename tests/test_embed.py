import numpy as np
import pytest

from qa_bot.embed import SentenceTransformerEmbedder
from qa_bot.testing import HashEmbedder


@pytest.mark.slow
def test_fast_path_gives_the_same_vectors_as_sentence_transformers():
    emb = SentenceTransformerEmbedder()
    texts = ["When did Alibaba go public?", "The cloud business generated $2.7 billion.", "x",
             "Ünïcode “quotes” — and emoji 😀", "word " * 400]  # the last one is truncated at 256 word pieces
    fast = emb.embed(texts)
    assert type(emb._model).__name__ == "_MeanPoolingEncoder"
    reference = emb._sentence_transformer().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert fast.shape == (5, emb.dim) and emb.dim == 384 and fast.dtype == np.float32  # dim: asked of the model
    assert np.abs(fast - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # alone, each text is padded to a multiple of WIDTH_STEP word pieces, not to its own length: masked, the same
    alone = np.vstack([emb.embed([t]) for t in texts])
    assert np.abs(alone - reference).max() < 1e-5 and emb._model.width_step == 32


def test_hash_embedder_is_normalised_and_deterministic():
    e = HashEmbedder()
    a, b = e.embed(["alpha beta", "alpha beta"])
    assert np.allclose(a, b) and abs(np.linalg.norm(a) - 1) < 1e-6
    assert e.embed([]).shape == (0, 256)


@pytest.mark.slow
def test_bf16_precision_keeps_vectors_and_has_its_own_fingerprint():
    fp32, bf16 = SentenceTransformerEmbedder(), SentenceTransformerEmbedder(quantize="bf16")
    texts = ["When did Alibaba go public?", "The cloud business generated $2.7 billion in revenue."]
    a, b = fp32.embed(texts), bf16.embed(texts)
    assert (a * b).sum(1).min() > 0.999
    assert fp32.fingerprint != bf16.fingerprint


def test_unknown_precision_is_a_clear_error():
    from qa_bot.errors import QABotError

    with pytest.raises(QABotError, match="unknown embedding quantization"):
        SentenceTransformerEmbedder(quantize="fp8")
