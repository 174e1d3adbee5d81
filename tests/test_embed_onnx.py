"""The int8 ONNX embedder (qa_bot/embed_onnx.py), the default: its vectors against fp32's on real text, the hash
check of its cached file, an index rebuilt (never mixed) when the embedder changes, and the index build that reads
documents in worker processes while it embeds. The real model where behaviour is tested; the hashing embedder for
the index plumbing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa_bot.errors import QABotError
from qa_bot.settings import Settings
from qa_bot.testing import HashEmbedder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def int8():
    """The embedder as the bot makes it: exported once into the model cache (as `qa-bot index` does), then reused."""
    from qa_bot.embed_onnx import OnnxInt8Embedder

    emb = OnnxInt8Embedder(cache_dir=Settings.from_env().model_cache_dir)
    emb.load()
    return emb


def real_sentences() -> list[str]:
    """Every sentence of the packaged article, and the dev questions about it."""
    from qa_bot.cite import sentence_spans

    text = (ROOT / "docs_corpus" / "alibaba_cloud_spinoff.txt").read_text("utf-8")
    sentences = [text[a:b] for a, b in sentence_spans(text) if text[a:b].strip()]
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "article_qa.jsonl").read_text().splitlines()
                 if line.strip()]
    return sentences + questions


@pytest.mark.slow
def test_int8_vectors_agree_with_fp32_on_real_sentences(int8):
    from qa_bot.embed import SentenceTransformerEmbedder

    texts = real_sentences()
    assert len(texts) > 40
    got, ref = int8.embed(texts), SentenceTransformerEmbedder().embed(texts)
    assert got.shape == ref.shape == (len(texts), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = (got * ref).sum(1)
    # int8 rounding costs short texts most: two short sentences of the article are at 0.988-0.990, the other 49
    # texts at 0.993-0.997 (docs/embedder.md); chunks, what the index holds, are longer
    low = [(round(float(c), 4), t[:60]) for c, t in zip(cos, texts) if c <= 0.99]
    assert cos.mean() > 0.995 and cos.min() > 0.985 and len(low) <= 0.05 * len(texts), low
    # rows come back in the order given although batches are formed by length: each text embedded alone (as a
    # question is) is nearest its own row; alone it is as close to fp32 (activations are scaled per batch, so
    # a text's int8 vector moves a little with its batch)
    alone = np.vstack([int8.embed([t]) for t in texts[:12]])
    assert list(np.argmax(alone @ got.T, 1)) == list(range(12))
    assert (alone * ref[:12]).sum(1).min() > 0.985
    # the nearest sentence to each dev question: where int8's differs from fp32's (3 of 24), it is a near-tie,
    # a sentence fp32 scores within 0.02 of its own best
    q, sent = slice(len(texts) - 24, len(texts)), slice(0, len(texts) - 24)
    fp32_scores = ref[q] @ ref[sent].T
    picked = np.argmax(got[q] @ got[sent].T, 1)
    gap = fp32_scores.max(1) - fp32_scores[np.arange(24), picked]
    assert gap.max() < 0.02, gap
    assert int8.embed([]).shape == (0, 384) and int8.embed_query(["x"]).shape == (1, 384)


@pytest.mark.slow
def test_int8_chunk_vectors_agree_with_fp32(int8):
    """What the index holds: the chunks of a real news article, as the index cuts them."""
    from qa_bot.embed import SentenceTransformerEmbedder
    from qa_bot.ingest import chunk_documents, load_corpus

    docs, _ = load_corpus(ROOT / "eval" / "news_corpus", 1 << 26)
    chunks = chunk_documents(docs[:2], max_chars=400, max_tokens=256, count_tokens=int8.count_tokens)
    texts = [c.text for c in chunks]
    assert len(texts) > 50
    cos = (int8.embed(texts) * SentenceTransformerEmbedder().embed(texts)).sum(1)
    assert cos.min() > 0.99 and cos.mean() > 0.995


@pytest.mark.slow
def test_long_text_is_truncated_as_sentence_transformers_does(int8):
    from qa_bot.embed import SentenceTransformerEmbedder

    long = "The ferry timetable changes in spring and the fares stay the same. " * 60  # ~800 word pieces
    assert int8.count_tokens(long) > 256
    assert int8._truncate(int8._tokenizer.encode(long).ids)[-1] == int8._tokenizer.token_to_id("[SEP]")
    got, ref = int8.embed([long]), SentenceTransformerEmbedder().embed([long])
    assert float(got[0] @ ref[0]) > 0.99


@pytest.mark.slow
def test_a_tampered_model_file_is_refused_with_a_clear_message(int8, tmp_path):
    from qa_bot.embed_onnx import OnnxInt8Embedder

    (tmp_path / "embedders").mkdir()
    copy = tmp_path / "embedders" / int8.model_path.name
    shutil.copy(int8.model_path, copy)
    assert OnnxInt8Embedder(cache_dir=tmp_path).verify() == copy  # an intact copy is used as it is
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    copy.write_bytes(bytes(data))
    emb = OnnxInt8Embedder(cache_dir=tmp_path)
    with pytest.raises(QABotError) as err:
        emb.embed(["When did Alibaba go public?"])
    msg = str(err.value)
    assert "damaged or was changed" in msg and str(copy) in msg and int8.sha256 in msg and "\n" not in msg
    assert "_session" not in emb.__dict__  # nothing was loaded from it


@pytest.mark.slow
def test_qa_bot_index_exports_offline_on_a_fresh_cache_and_refuses_a_tampered_file(tmp_path):
    """A fresh clone: no int8 file yet. `qa-bot index` exports it with no network (any download would go to a
    dead proxy and fail), then uses it; a file changed afterwards stops the next run with one line, exit 1."""
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "eval" / "sample_corpus", corpus)
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "QA_BOT_MODEL_CACHE_DIR": str(tmp_path / "models"), "QA_BOT_CACHE_DIR": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    env.pop("QA_BOT_EMBED_PRECISION", None)
    env["PYTHONPATH"] = str(ROOT)  # this checkout's qa_bot, from any folder
    run = lambda: subprocess.run([sys.executable, "-m", "qa_bot.cli", "index", "--corpus", str(corpus), "--json"],  # noqa: E731
                                 env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    first = run()
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert lines[-1]["event"] == "done" and lines[-1]["embed_precision"] == "onnx-int8" and lines[-1]["embedded"] > 0
    steps = [x for x in lines if x["event"] == "progress"]
    assert steps and steps[-1]["docs_done"] == steps[-1]["docs_total"] == 2 and steps[-1]["eta_s"] == 0
    assert {"chunks_per_s", "docs_per_s", "eta_s", "chunks_done", "chunks_total"} <= set(steps[-1])
    (made,) = (tmp_path / "models" / "embedders").glob("*.onnx")
    assert "-int8-torch" in made.name and "-onnx" in made.name and "-ort" in made.name
    from qa_bot.weights import file_sha256

    assert made.name.endswith(f"-{file_sha256(made)}.onnx")  # its own hash in its name

    made.write_bytes(made.read_bytes()[:-100])  # truncated
    second = run()
    assert second.returncode == 1
    err = second.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qa-bot: error: the int8 embedding model") and "Delete it" in err[0]


@pytest.mark.slow
def test_an_index_is_re_embedded_when_the_embedder_changes(small_corpus, tmp_path):
    """int8 ONNX -> torch fp32 -> int8 ONNX: each switch embeds every chunk again (no vector of the other kind is
    reused or searched), and the manifest names the embedder that built the vectors."""
    from qa_bot.pipeline import QABot

    def index(precision):
        s = Settings.from_env({}, corpus_dir=small_corpus, cache_dir=tmp_path, embed_precision=precision)
        return QABot(settings=s).index

    first = index("onnx-int8")
    n = len(first.chunks)
    assert first.info["how"] == "built" and first.info["n_embedded"] == n and first.info["embed_precision"] == "onnx-int8"
    assert ":onnx-int8:" in first.info["embedding_model"]
    assert index("onnx-int8").info["how"] == "loaded"
    other = index("fp32")
    assert other.info["how"] == "built" and other.info["n_embedded"] == n and other.info["embed_precision"] == "fp32"
    assert other.info["embedding_model"] != first.info["embedding_model"]
    back = index("onnx-int8")
    assert back.info["how"] == "built" and back.info["n_embedded"] == n
    hit = QABot(settings=Settings.from_env({}, corpus_dir=small_corpus, cache_dir=tmp_path)).retrieve(
        "How much rain fell in the harbour city?")[0]
    assert hit.chunk.source == "weather.md"


def test_unknown_embedder_setting_is_a_one_line_error():
    with pytest.raises(QABotError, match="QA_BOT_EMBED_PRECISION='onnx-int4' is not one of: onnx-int8, fp32"):
        Settings.from_env({"QA_BOT_EMBED_PRECISION": "onnx-int4"})


def test_the_export_keeps_the_feed_forward_outputs_fp32():
    from qa_bot.embed_onnx import KEEP_FP32

    assert KEEP_FP32.search("/m/encoder/layer.5/output/dense/MatMul")
    assert not KEEP_FP32.search("/m/encoder/layer.5/attention/output/dense/MatMul")
    assert not KEEP_FP32.search("/m/encoder/layer.5/intermediate/dense/MatMul")


# --- the index build that reads while it embeds (hashing embedder: no model) ------------------------------------


def html(title: str, body: str) -> str:
    return (f"<html><head><title>{title}</title></head><body><nav>Home | News | Sport</nav><article><h1>{title}</h1>"
            + "".join(f"<p>{p}</p>" for p in body.split("\n")) + "</article><footer>Contact us</footer></body></html>")


def story(topic: str, n: int = 8) -> str:
    return "\n".join(f"The {topic} report number {i} says that output rose by {i * 7} percent in the {topic} sector "
                     f"this quarter, the regional office said on Monday." for i in range(n))


@pytest.fixture
def html_corpus(tmp_path):
    from qa_bot.ingest import PARALLEL_MIN_FILES

    d = tmp_path / "corpus"
    d.mkdir()
    topics = ["steel", "cloud", "retail", "shipping", "farming", "mining", "banking", "energy", "tourism", "fishing",
              "textiles", "aviation", "rail", "housing", "media", "water", "forestry", "chemicals"]
    assert len(topics) >= PARALLEL_MIN_FILES
    for t in topics:
        (d / f"{t}.html").write_text(html(f"{t.title()} output rises", story(t)), "utf-8")
    (d / "notes.txt").write_text("A plain note about the ferry timetable.\n", "utf-8")
    (d / "empty.html").write_text("<html><body><nav>Home</nav></body></html>", "utf-8")  # no article: skipped
    return d


def test_html_is_extracted_in_worker_processes_with_the_same_result(html_corpus, caplog):
    from qa_bot.ingest import CorpusStream, load_corpus

    (html_corpus / "steel.meta.json").write_text("{not json", "utf-8")
    parallel = CorpusStream(html_corpus, 1 << 26)
    assert parallel.workers >= 1 and parallel.total == 20
    with caplog.at_level("WARNING", logger="qa_bot"):
        docs = list(parallel)
    # a worker's warning reaches this process's log, once
    assert sum("ignored steel.meta.json" in r.getMessage() for r in caplog.records) == 1
    serial, skipped = load_corpus(html_corpus, 1 << 26, workers=0)
    assert [(d.source, d.text, d.meta, d.sha256) for d in docs] == [(d.source, d.text, d.meta, d.sha256) for d in serial]
    assert [s.source for s in parallel.skipped] == [s.source for s in skipped] == ["empty.html"]
    assert "Home | News" not in docs[0].text and "report number 3" in docs[0].text


@pytest.mark.slow  # three builds of the folder, each read by spawned worker processes; the test above spawns them fast
def test_streamed_build_equals_the_build_from_a_list_and_stays_incremental(html_corpus, tmp_path):
    """The forced build reads documents while it embeds (CorpusStream): the same chunks and vectors as a build from
    the finished list, and after one document changes, only that document's changed chunks are embedded."""
    from qa_bot.index_build import IndexProgress
    from qa_bot.pipeline import QABot

    class Counting(HashEmbedder):
        def __init__(self):
            super().__init__()
            self.embedded: list[str] = []

        def embed(self, texts):
            self.embedded.extend(texts)
            return super().embed(texts)

    settings = Settings.from_env({}, corpus_dir=html_corpus, cache_dir=tmp_path / "cache")
    emb = Counting()
    bot = QABot(settings=settings, embedder=emb)
    seen: list[IndexProgress] = []
    streamed = bot.build_index(force=True, progress=seen.append)
    assert bot.corpus.loaded("documents") is not None and len(bot.documents) == 19 and [s.source for s in bot.skipped] == ["empty.html"]
    assert streamed.info["n_embedded"] == len(streamed.chunks) == len(emb.embedded)
    assert seen[-1].done == seen[-1].total == len(streamed.chunks) and not seen[-1].estimated
    assert seen[-1].docs_done == seen[-1].docs_total == 19  # 20 files, one of them no article
    assert all(b.done >= a.done for a, b in zip(seen, seen[1:]))

    listed = QABot(settings=settings.replace(cache_dir=tmp_path / "other"), embedder=HashEmbedder())
    _ = listed.documents  # read first: the build from the finished list
    again = listed.build_index(force=True)
    assert [c.id for c in again.chunks] == [c.id for c in streamed.chunks]

    page = html_corpus / "steel.html"
    page.write_text(page.read_text("utf-8").replace("report number 7 says", "report number 7 now says"), "utf-8")
    emb.embedded.clear()
    bot2 = QABot(settings=settings, embedder=emb)
    seen.clear()
    after = bot2.build_index(force=True, progress=seen.append)
    assert after.info["n_embedded"] == len(emb.embedded) >= 1
    last = seen[-1]  # the final report has the true totals: every document done, the reused chunks counted
    assert (last.done, last.total, last.docs_done, last.docs_total, last.estimated) == (len(emb.embedded), len(emb.embedded), 19, 19, False)
    assert last.reused == len(after.chunks) - len(emb.embedded) and last.eta_s == 0
    assert all("steel" in t for t in emb.embedded) and any("now says" in t for t in emb.embedded)
    old = {c.text for c in streamed.chunks}
    assert sorted(emb.embedded) == sorted(c.text for c in after.chunks if c.text not in old)


def test_index_progress_on_a_terminal_and_as_json_lines(capsys):
    import io

    from qa_bot.cli import _Progress
    from qa_bot.index_build import IndexProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    bar = _Progress(stream=term)
    bar(IndexProgress(256, 1000, 10, 100, reused=5, seconds=10.0, estimated=True))
    bar.close()
    line = term.getvalue()
    assert line.startswith("\rembedding: 256/~1,000 chunks (26/s), 10/100 documents (1.0/s), 5 reused, ETA 0:29")
    assert line.endswith("\n")

    lines = _Progress(as_json=True)
    done = IndexProgress(1000, 1000, 100, 100, seconds=40.0)
    lines(IndexProgress(256, 1000, 10, 100, seconds=10.0, estimated=True))
    lines(done)
    lines(done)  # the same step again (the last document's end, then the end): printed once
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["chunks_done"] for r in rows] == [256, 1000]
    assert rows[0]["chunks_total_estimated"] and rows[0]["eta_s"] == 29.1 and rows[0]["docs_per_s"] == 1.0
    assert rows[1] == {"event": "progress", "chunks_done": 1000, "chunks_total": 1000, "chunks_total_estimated": False,
                       "reused": 0, "docs_done": 100, "docs_total": 100, "seconds": 40.0, "chunks_per_s": 25.0,
                       "docs_per_s": 2.5, "eta_s": 0.0}
    # not a terminal and not --json (a log, a pipe): nothing but the final summary line, printed by the command
    quiet = io.StringIO()
    _Progress(stream=quiet)(done)
    assert quiet.getvalue() == ""
