"""Indexing speed: the "auto" precision (opt-in), its record in the manifest, and progress while embedding."""
import pytest

from qa_bot import embed
from qa_bot.index_build import EMBED_STEP
from qa_bot.index_store import load_or_build
from qa_bot.ingest import load_corpus
from qa_bot.settings import Settings
from qa_bot.testing import HashEmbedder


class Bf16HashEmbedder(HashEmbedder):
    """Same vectors and fingerprint as HashEmbedder, another recorded precision: only the manifest differs."""

    precision = "bf16"


def build(corpus, cache, embedder, **kw):
    docs, _ = load_corpus(corpus, 1 << 26)
    return load_or_build(docs, corpus_dir=corpus, cache_dir=cache, embedder=embedder, chunk_chars=400,
                         chunk_max_tokens=256, **kw)


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_follows_the_cpu(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(embed, "cpu_supports_bf16", lambda: has_bf16)
    assert embed.resolve_precision("auto") == expected
    assert embed.resolve_precision("int8") == "int8" and embed.resolve_precision("fp32") == "fp32"


def test_onnx_int8_is_the_default_and_this_cpu_is_probed():
    assert Settings().embed_precision == "onnx-int8"  # retrieval within 0.01 of fp32's (docs/embedder.md)
    flags = open("/proc/cpuinfo").read().split()
    assert embed.cpu_supports_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_an_index_of_another_precision_is_rebuilt_not_mixed(small_corpus, tmp_path):
    first = build(small_corpus, tmp_path, HashEmbedder())
    assert first.info["embed_precision"] == "fp32"
    other = build(small_corpus, tmp_path, Bf16HashEmbedder())
    assert other.info["how"] == "built" and other.info["embed_precision"] == "bf16"
    assert build(small_corpus, tmp_path, Bf16HashEmbedder()).info["how"] == "loaded"


def test_progress_reports_every_step_up_to_the_total(small_corpus, tmp_path):
    (small_corpus / "long.txt").write_text(" ".join(f"Sentence number {i} of a long report." for i in range(4000)))
    calls = []
    index = build(small_corpus, tmp_path, HashEmbedder(), progress=lambda p: calls.append((p.done, p.total)))
    total = index.info["n_embedded"]
    assert total > EMBED_STEP  # more than one step
    assert [d for d, _ in calls] == [0] + [min(total, s + EMBED_STEP) for s in range(0, total, EMBED_STEP)]
    assert {t for _, t in calls} == {total}
