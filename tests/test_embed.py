import json
import os
import subprocess
import sys

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


@pytest.mark.slow
def test_question_time_vectors_come_from_numpy_and_match_torchs():
    emb = SentenceTransformerEmbedder()
    texts = ["When did Alibaba go public?", "The cloud business generated $2.7 billion.", "x", "",
             "Ünïcode “quotes” — and emoji 😀", "word " * 400]  # the last one is truncated at 256 word pieces
    fast = emb.embed_query(texts)
    assert emb.dim == 384 and "_model" not in emb.__dict__  # dim and the vectors without the torch model
    reference = emb.embed(texts)
    assert fast.shape == reference.shape and fast.dtype == np.float32
    assert np.abs(fast - reference).max() < 1e-5
    # one at a time (no padding) as in a batch padded to its longest text
    alone = np.vstack([emb.embed_query([t]) for t in texts])
    assert np.abs(alone - fast).max() < 1e-5
    assert emb.embed_query([]).shape == (0, 384)


def test_question_time_embedding_falls_back_to_embed():
    from qa_bot.index import embed_query

    e = HashEmbedder()  # no embed_query of its own: embed() serves
    assert np.array_equal(embed_query(e, ["alpha beta"]), e.embed(["alpha beta"]))
    bf16 = SentenceTransformerEmbedder(quantize="bf16")  # queries at the index's precision: through torch
    assert bf16._numpy_encoder is None


@pytest.mark.slow
def test_answering_from_a_built_index_never_imports_torch(tmp_path):
    """torch and transformers take ~4.5 s to import here: a question over an existing index must not need them."""
    from conftest import CORPUS

    env = {**os.environ, "QA_BOT_CACHE_DIR": str(tmp_path)}
    build = f"from qa_bot import QABot; QABot({str(CORPUS)!r}).index"
    subprocess.run([sys.executable, "-c", build], env=env, check=True, timeout=600, capture_output=True)
    probe = (f"import json, sys; from qa_bot import QABot; b = QABot({str(CORPUS)!r}); "
             "hits = b.retrieve('When did Alibaba go public?'); "
             "print(json.dumps({'hits': len(hits), 'loaded': sorted(m for m in ('torch', 'transformers', "
             "'sentence_transformers') if m in sys.modules)}))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, check=True, timeout=600, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["hits"] > 0 and result["loaded"] == [], result


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


def test_load_model_loads_what_embed_uses():
    """Index builds time the embedding without the model's start-up: dim alone no longer loads torch's model."""
    from qa_bot.index_build import load_model

    emb = SentenceTransformerEmbedder()
    assert emb.dim == 384 and "_model" not in emb.__dict__
    load_model(emb)
    assert "_model" in emb.__dict__
    load_model(HashEmbedder())  # no load() of its own: dim serves
