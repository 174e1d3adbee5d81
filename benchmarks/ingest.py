"""Ingestion speed: embedding throughput (chunks/s for ~90-token chunks) and incremental re-indexing.

    .venv/bin/python benchmarks/ingest.py [--chunks 256] [--docs 40] [--quick]

Embedding variants, each over the same synthetic chunks (article sentences with varied numbers, names and
order, packed to ~90 word pieces like the index's own 400-character chunks):
  fp32     the default (SentenceTransformerEmbedder): batch sizes 1..128 at 2 torch threads, and
           1/2/4 threads at batch 32 (4 threads on 2 cores shows what oversubscription costs)
  bf16     bfloat16 autocast (SentenceTransformerEmbedder(quantize="bf16"), QA_BOT_EMBED_PRECISION=bf16)
  int8     torch dynamic int8 quantization of the Linear layers (SentenceTransformerEmbedder(quantize="int8"))
  onnx     sentence-transformers backend="onnx" (fp32 ONNX export, and its dynamic int8 quantization),
           only when optimum + onnxruntime are importable; otherwise reported as not available
Quality of every variant against fp32: cosine of its vectors to the fp32 ones (synthetic chunks), and top-1/top-4
agreement of dev-question searches (eval/article_qa.jsonl) over the article's own chunks.

Re-index: build an index of --docs synthetic documents with qa_bot.index_store.load_or_build (fresh temporary cache),
load it unchanged, add one document and rebuild: n_embedded and times for each.

Prints a table and writes benchmarks/results/ingest.json. Timings on a busy machine are inflated (the load
average is recorded); quality figures are exact.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot.embed import SentenceTransformerEmbedder  # noqa: E402
from qa_bot.cite import sentence_spans  # noqa: E402
from qa_bot.ingest import Document, chunk_text  # noqa: E402
from qa_bot.settings import Settings  # noqa: E402

TARGET_TOKENS = 90
NAMES = ["Alibaba", "Tencent", "Baidu", "JD.com", "Meituan", "ByteDance", "Xiaomi", "Huawei", "NetEase", "Pinduoduo"]
PLACES = ["New York", "Hong Kong", "Shanghai", "Singapore", "London", "Shenzhen", "Tokyo", "Frankfurt"]


# ------------------------------------------------------------------------------------------------ data


def article_sentences() -> list[str]:
    text = (ROOT / "docs_corpus" / "alibaba_cloud_spinoff.txt").read_text("utf-8")
    return [" ".join(text[s:e].split()) for s, e in sentence_spans(text) if e - s > 30]


def vary(sentence: str, rng: random.Random) -> str:
    s = re.sub(r"\d+(\.\d+)?", lambda m: str(round(rng.uniform(1, 999), 1 if m.group(1) else None)), sentence)
    s = re.sub(r"\bAlibaba\b", lambda m: rng.choice(NAMES), s)
    s = re.sub(r"\b(New York|Hong Kong)\b", lambda m: rng.choice(PLACES), s)
    return s


def synthetic_chunks(n: int, count_tokens, seed: int = 0) -> list[str]:
    """n texts of ~TARGET_TOKENS word pieces: runs of varied article sentences, trimmed at a word."""
    rng = random.Random(seed)
    sents = article_sentences()
    out = []
    while len(out) < n:
        i = rng.randrange(len(sents))
        words: list[str] = []
        while count_tokens(" ".join(words)) < TARGET_TOKENS:
            words += vary(sents[i % len(sents)], rng).split()
            i += rng.choice((1, 1, 2, 3))
        while count_tokens(" ".join(words)) > TARGET_TOKENS + 5:
            words.pop()
        out.append(" ".join(words))
    return out


def synthetic_doc(k: int, n_chunks: int, count_tokens) -> str:
    """A document of ~n_chunks index chunks: paragraphs of varied sentences."""
    rng = random.Random(1000 + k)
    sents = article_sentences()
    paras, i = [], rng.randrange(len(sents))
    for _ in range(n_chunks):
        para = []
        while len(" ".join(para)) < 330:
            para.append(vary(sents[i % len(sents)], rng) + f" (Report {k}.{len(paras)}.{len(para)}.)")
            i += 1
        paras.append(" ".join(para))
    return "\n\n".join(paras) + "\n"


# ------------------------------------------------------------------------------------------------ embedding


def make_embedder(variant: str, threads: int, batch: int):
    """fp32 / int8 through qa_bot's embedder; onnx / onnx-int8 through sentence-transformers' ONNX backend."""
    if variant in ("fp32", "bf16", "int8"):
        return SentenceTransformerEmbedder(threads=threads, batch_size=batch,
                                           quantize=None if variant == "fp32" else variant)
    return OnnxEmbedder(variant, threads, batch)


class OnnxEmbedder:
    """sentence-transformers backend="onnx", exported from the local model folder into a temp copy."""

    def __init__(self, variant: str, threads: int, batch: int):
        import shutil

        import torch
        from sentence_transformers import SentenceTransformer

        base = SentenceTransformerEmbedder()
        self._tmp = tempfile.TemporaryDirectory(prefix="qa_onnx_")
        folder = Path(self._tmp.name) / "model"
        shutil.copytree(base.model_dir, folder)
        torch.set_num_threads(threads)
        kwargs = {"provider": "CPUExecutionProvider"}
        model = SentenceTransformer(str(folder), device="cpu", backend="onnx", local_files_only=True,
                                    model_kwargs=kwargs)  # exports ONNX on first load
        if variant == "onnx-int8":
            from sentence_transformers import export_dynamic_quantized_onnx_model

            model.save_pretrained(str(folder))
            cfg = "avx512_vnni" if "avx512_vnni" in Path("/proc/cpuinfo").read_text() else "avx2"
            export_dynamic_quantized_onnx_model(model, cfg, str(folder))
            model = SentenceTransformer(str(folder), device="cpu", backend="onnx", local_files_only=True,
                                        model_kwargs={**kwargs, "file_name": f"onnx/model_qint8_{cfg}.onnx"})
        self._model, self.batch_size, self.threads = model, batch, threads

    def embed(self, texts):
        v = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(v, dtype=np.float32)


def onnx_available() -> str | None:
    import importlib.util

    missing = [m for m in ("onnxruntime", "optimum") if importlib.util.find_spec(m) is None]
    return None if not missing else f"not installed: {', '.join(missing)} (pip install 'optimum-onnx[onnxruntime]')"


def throughput(emb, texts: list[str], threads: int, repeats: int) -> dict:
    """Best and median of `repeats` timed passes: the best is the least disturbed by other processes."""
    import torch

    torch.set_num_threads(threads)
    emb.embed(texts[: max(2, min(len(texts), 2 * emb.batch_size))])  # warm-up: allocations, lazy init
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        emb.embed(texts)
        rates.append(len(texts) / (time.perf_counter() - t))
    return {"chunks_per_s": max(rates), "chunks_per_s_median": float(np.median(rates)), "passes": rates}


def quality(vecs: np.ndarray, ref: np.ndarray, qv: np.ndarray, qref: np.ndarray, cos: np.ndarray) -> dict:
    # Dev questions against the same corpus, both embedded by the variant vs both by fp32.
    top_v = np.argsort(-(qv @ vecs.T), axis=1)[:, :4]
    top_r = np.argsort(-(qref @ ref.T), axis=1)[:, :4]
    return {"cos_to_fp32_mean": float(cos.mean()), "cos_to_fp32_min": float(cos.min()),
            "top1_agreement": float((top_v[:, 0] == top_r[:, 0]).mean()),
            "top4_overlap": float(np.mean([len(set(a) & set(b)) / 4 for a, b in zip(top_v, top_r)]))}


def gemm_ceiling(threads: int = 2) -> dict:
    """What the hardware allows: GFLOP/s of a bare matmul of the model's own shapes (a batch of 32 chunks of
    ~90 tokens times the 384x1536 feed-forward weight), fp32 and bf16, best of 5 runs of 20."""
    import torch

    torch.set_num_threads(threads)
    out = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(2880, 384).to(dt), torch.randn(384, 1536).to(dt)
        best = 0.0
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(20):
                a @ b
            best = max(best, 2 * 2880 * 384 * 1536 * 20 / (time.perf_counter() - t) / 1e9)
        out[name] = best
    return out


def flops_per_chunk(tokens: float, layers=6, hidden=384, inter=1536) -> float:
    """Matmul FLOPs of one MiniLM-L6 forward pass: projections, feed-forward and attention scores."""
    per_token_layer = 2 * (4 * hidden * hidden + 2 * hidden * inter) + 4 * tokens * hidden
    return tokens * layers * per_token_layer


def run_embedding(texts, corpus, questions, args) -> list[dict]:
    import gc

    plan = [("fp32", 2, b) for b in args.batches] + [("fp32", t, 32) for t in args.threads if t != 2]
    plan += [("bf16", 2, 32)]
    plan += [("int8", 2, b) for b in (16, 32, 64)] + [("int8", 1, 32)]
    why_no_onnx = onnx_available()
    if why_no_onnx is None:
        plan += [("onnx", 2, 32), ("onnx-int8", 2, 32)]
    plan = [x for x in plan if x[0] in args.variants or x[0] == "fp32" and x[1:] == (2, 32)]  # the reference
    rows, synth_ref, ref, qref, cache = [], None, None, None, {}
    for variant, threads, batch in plan:
        row = {"variant": variant, "threads": threads, "batch": batch}
        try:
            key = variant
            if key not in cache:
                cache.clear()
                gc.collect()
                cache[key] = make_embedder(variant, threads, batch)
            emb = cache[key]
            emb.batch_size = batch
            subset = texts[: args.chunks_batch1] if batch == 1 else texts
            r = throughput(emb, subset, threads, args.repeats)
            row.update(chunks=len(subset), **r)
            if (variant, threads, batch) == ("fp32", 2, 32) or variant != "fp32" and not any(
                    x.get("quality") for x in rows if x["variant"] == variant):
                import torch

                torch.set_num_threads(2)
                synth, vecs, qv = emb.embed(corpus[0]), emb.embed(corpus[1]), emb.embed(questions)
                if variant == "fp32":
                    synth_ref, ref, qref = synth, vecs, qv
                row["quality"] = quality(vecs, ref, qv, qref, (synth * synth_ref).sum(1))
        except Exception as exc:  # a backend that does not work here is a finding, not a crash
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        rows.append(row)
        print(f"  {variant:9} threads {threads} batch {batch:3}: "
              + (f"{row['chunks_per_s']:6.1f} chunks/s" if "chunks_per_s" in row else row.get("error", "")), flush=True)
    if why_no_onnx:
        rows.append({"variant": "onnx", "error": why_no_onnx})
    return rows


# ------------------------------------------------------------------------------------------------ re-index


def run_reindex(n_docs: int, chunks_per_doc: int) -> dict:
    from qa_bot.index_store import load_or_build

    s = Settings.from_env()
    emb = SentenceTransformerEmbedder(s.embedding_model, threads=s.torch_threads, batch_size=s.embed_batch_size)

    def doc(k):
        text = synthetic_doc(k, chunks_per_doc, emb.count_tokens)
        return Document(f"doc{k:04d}.txt", text, hashlib.sha256(text.encode()).hexdigest())

    docs = [doc(k) for k in range(n_docs)]
    new = doc(n_docs)
    n_new = len(chunk_text(new.text, new.source, max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                           count_tokens=emb.count_tokens))
    out = {"docs": n_docs, "new_doc_chunks": n_new}
    with tempfile.TemporaryDirectory(prefix="qa_reindex_") as tmp:
        kw = dict(corpus_dir=Path(tmp) / "corpus", cache_dir=Path(tmp) / "cache", embedder=emb,
                  chunk_chars=s.chunk_chars, chunk_max_tokens=s.chunk_max_tokens)
        emb.embed(["warm up the model"])
        for step, corpus in (("initial build", docs), ("unchanged (load)", docs), ("add one document", docs + [new])):
            t = time.perf_counter()
            idx = load_or_build(corpus, **kw)
            dt = time.perf_counter() - t
            info = idx.info
            out[step] = {"seconds": dt, "how": info.get("how"), "n_chunks": len(idx.chunks),
                         "n_embedded": info.get("n_embedded", 0),
                         **{k: info[k] for k in ("chunk_s", "embed_s", "index_s") if k in info}}
    out["only_new_chunks_embedded"] = out["add one document"]["n_embedded"] == n_new
    return out


# ------------------------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, default=128, help="synthetic chunks per timed pass")
    p.add_argument("--chunks-batch1", type=int, default=32, help="fewer for batch size 1 (slow)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per configuration (best is reported)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32, 64, 128])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--docs", type=int, default=40, help="documents in the re-index experiment")
    p.add_argument("--chunks-per-doc", type=int, default=5)
    p.add_argument("--variants", nargs="+", default=["fp32", "bf16", "int8", "onnx", "onnx-int8"],
                   help="embedding variants to time (fp32 at 2 threads, batch 32 always runs: it is the reference)")
    p.add_argument("--no-reindex", action="store_true")
    p.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ingest.json")
    args = p.parse_args(argv)
    if args.quick:
        args.chunks, args.chunks_batch1, args.batches, args.threads, args.docs, args.repeats = 64, 16, [1, 32], [1, 2], 8, 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    counter = SentenceTransformerEmbedder()
    texts = synthetic_chunks(args.chunks, counter.count_tokens)
    ntok = [counter.count_tokens(t) for t in texts]
    article = (ROOT / "docs_corpus" / "alibaba_cloud_spinoff.txt").read_text("utf-8")
    s = Settings.from_env()
    # Quality: cosine to fp32 over the synthetic chunks, and the dev questions' top-1/top-4 over the article's
    # real chunks (the synthetic ones are near-duplicates of each other, so their ranking is a coin toss).
    article_chunks = [c.text for c in chunk_text(article, "a", max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                                                 count_tokens=counter.count_tokens)]
    corpus = (texts, article_chunks)
    questions = [json.loads(x)["question"] for x in (ROOT / "eval" / "article_qa.jsonl").read_text().splitlines()
                 if x.strip()]
    result = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": os.cpu_count(), "loadavg_before": os.getloadavg()},
              "chunks": len(texts), "tokens_per_chunk_mean": float(np.mean(ntok)),
              "tokens_per_chunk_min_max": [min(ntok), max(ntok)]}
    print(f"embedding {len(texts)} synthetic chunks of {np.mean(ntok):.0f} word pieces (min {min(ntok)}, max {max(ntok)})")
    t = time.perf_counter()
    result["gemm_gflops"] = gemm_ceiling()
    result["gflop_per_chunk"] = flops_per_chunk(float(np.mean(ntok))) / 1e9
    result["embedding"] = run_embedding(texts, corpus, questions, args)
    result["embedding_s"] = time.perf_counter() - t
    if not args.no_reindex:
        print("re-index experiment ...", flush=True)
        result["reindex"] = run_reindex(args.docs, args.chunks_per_doc)
    result["machine"]["loadavg_after"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=1))
    print_report(result)
    print(f"\nwrote {args.out}")
    return 0


def print_report(r: dict) -> None:
    m = r["machine"]
    print(f"\nload average before {m['loadavg_before'][0]:.1f}, after {m['loadavg_after'][0]:.1f} on {m['cpus']} CPUs "
          "(throughput on a busy machine is deflated; quality columns are exact)")
    print(f"{r['chunks']} chunks of ~{r['tokens_per_chunk_mean']:.0f} word pieces per pass; chunks/s = best pass")
    base = next((x["chunks_per_s"] for x in r["embedding"]
                 if (x.get("variant"), x.get("threads"), x.get("batch")) == ("fp32", 2, 32) and "chunks_per_s" in x), None)
    print(f"\n{'variant':10} {'threads':>7} {'batch':>5} {'chunks/s':>9} {'median':>7} {'vs fp32/2/32':>12} "
          f"{'cos mean':>8} {'cos min':>8} {'top1 agr':>8} {'top4 ovl':>8}")
    for x in r["embedding"]:
        if "error" in x:
            print(f"{x['variant']:10} {x.get('threads', ''):>7} {x.get('batch', ''):>5}  {x['error']}")
            continue
        q = x.get("quality") or {}
        f = lambda k: f"{q[k]:.3f}" if k in q else ""  # noqa: E731
        rel = f"{x['chunks_per_s'] / base:.2f}x" if base else ""
        print(f"{x['variant']:10} {x['threads']:>7} {x['batch']:>5} {x['chunks_per_s']:>9.1f} "
              f"{x['chunks_per_s_median']:>7.1f} {rel:>12} "
              f"{f('cos_to_fp32_mean'):>8} {f('cos_to_fp32_min'):>8} {f('top1_agreement'):>8} {f('top4_overlap'):>8}")
    g = r.get("gemm_gflops")
    if g and base:
        useful = base * r["gflop_per_chunk"]
        print(f"\nhardware: bare matmul of the model's shapes {g['fp32']:.0f} GFLOP/s fp32, {g['bf16']:.0f} bf16 (2 threads);"
              f" fp32 embedding does {useful:.0f} GFLOP/s of matmul work ({r['gflop_per_chunk']:.2f} GFLOP/chunk)"
              f" = {100 * useful / g['fp32']:.0f} % of the fp32 ceiling")
        bf = next((x["chunks_per_s"] for x in r["embedding"] if x.get("variant") == "bf16" and "chunks_per_s" in x), None)
        if bf:
            print(f"bf16 embedding: {bf * r['gflop_per_chunk']:.0f} GFLOP/s = "
                  f"{100 * bf * r['gflop_per_chunk'] / g['bf16']:.0f} % of the bf16 ceiling")
    ri = r.get("reindex")
    if not ri:
        return
    print(f"\nre-index: {ri['docs']} documents, then one more ({ri['new_doc_chunks']} chunks)")
    print(f"{'step':20} {'seconds':>8} {'how':>7} {'chunks':>7} {'embedded':>8} {'embed s':>8}")
    for step in ("initial build", "unchanged (load)", "add one document"):
        x = ri[step]
        print(f"{step:20} {x['seconds']:8.2f} {x['how']:>7} {x['n_chunks']:>7} {x['n_embedded']:>8} "
              f"{x.get('embed_s', 0):8.2f}")
    print(f"only the new document's chunks were embedded: {ri['only_new_chunks_embedded']}")


if __name__ == "__main__":
    sys.exit(main())
