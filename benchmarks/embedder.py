"""The int8 ONNX embedder against torch: speed on one fixed batch, and whether retrieval stays the same.

    .venv/bin/python benchmarks/embedder.py bound  [--chunks 256] [--rounds 3]
    .venv/bin/python benchmarks/embedder.py parity [SET ...] [--variant onnx-int8]

bound: the embedder alone, nothing else in the process: one fixed batch of real chunks (the first --chunks of
eval/news_corpus as the index chunks it) embedded by each variant (onnx-int8, torch fp32, torch bf16), in rounds
that alternate the variants so that a change in the shared machine's load falls on all of them; reports the
best round's word pieces per second (padding not counted) and chunks per second, and every round.

parity: per question set of eval/ whose corpus is committed (dev article_qa over docs_corpus, sample_qa, and the
tuning and test halves), each corpus indexed by the real bot with fp32 and with the variant (QABot, its own
temporary cache). Per set:
  cos_chunks / cos_questions   cosine of the variant's vectors to fp32's (min and mean)
  top10_overlap, top1_same     the dense top-10 chunks (questions embedded as the bot does) against fp32's
  dense_recall@1/5/10          answerable questions whose evidence overlaps one of the dense top-k chunks
  recall@top_k                 ... one of the chunks the bot's hybrid retrieval keeps (BM25 + dense fused, top_k)
  shown                        ... one of the sentences the reader is shown (benchmarks/evidence_shown.py's count)
Writes <out>/embedder-bound.json or embedder-parity.json with the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETS = {"article_qa": "docs_corpus", "sample_qa": "eval/sample_corpus",
        **{f"{c}_{half}": f"eval/{c}_corpus" for c in ("news", "licenses", "readmes", "fresh", "sixth")
           for half in ("tune", "test")},
        **{f"paraphrase_{half}": "docs_corpus" for half in ("tune", "test")},
        **{f"compare_{c}_{half}": f"eval/{c}_corpus" for c in ("news", "licenses", "readmes") for half in ("tune", "test")}}


def settings_for(variant: str, cache: Path, corpus: Path):
    from qa_bot.settings import Settings

    return Settings.from_env().replace(corpus_dir=corpus, cache_dir=cache, embed_precision=variant)


def bound(args) -> dict:
    from qa_bot.embed import SentenceTransformerEmbedder
    from qa_bot.embed_onnx import OnnxInt8Embedder
    from qa_bot.ingest import chunk_documents, load_corpus
    from qa_bot.settings import Settings

    s = Settings.from_env()
    variants = {"onnx-int8": OnnxInt8Embedder(cache_dir=s.model_cache_dir, threads=s.torch_threads),
                "fp32": SentenceTransformerEmbedder(threads=s.torch_threads),
                "bf16": SentenceTransformerEmbedder(threads=s.torch_threads, quantize="bf16")}
    docs, _ = load_corpus(ROOT / "eval/news_corpus", s.max_file_bytes)
    counter = variants["onnx-int8"]
    chunks = chunk_documents(docs, max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                             count_tokens=counter.count_tokens)[: args.chunks]
    texts = [c.text for c in chunks]
    tokens = sum(counter.count_tokens(t) for t in texts)
    for e in variants.values():
        e.load()
        e.embed(texts[:8])  # first-call set-up out of the timing
    load_before = os.getloadavg()
    rounds = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    for r in range(args.rounds):
        for v, e in variants.items():
            t, c = time.perf_counter(), time.process_time()
            e.embed(texts)
            rounds[v].append(time.perf_counter() - t)
            cpu[v].append(time.process_time() - c)
        print(f"round {r + 1}: " + "  ".join(f"{v} {len(texts) / rounds[v][-1]:.1f} chunks/s" for v in variants)
              + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    result = {"chunks": len(texts), "tokens": tokens, "mean_tokens_per_chunk": round(tokens / len(texts), 1),
              "threads": s.torch_threads, "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
              "variants": {}}
    for v, secs in rounds.items():
        best = min(secs)
        # per CPU-second of the process (all its threads): what a loaded machine changes least; on 2 idle cores
        # with 2 threads the wall-clock rate approaches twice this
        result["variants"][v] = {"tokens_per_s": round(tokens / best), "chunks_per_s": round(len(texts) / best, 1),
                                 "rounds_chunks_per_s": [round(len(texts) / x, 1) for x in secs],
                                 "tokens_per_cpu_s": round(tokens / min(cpu[v])),
                                 "chunks_per_cpu_s": round(len(texts) / min(cpu[v]), 1)}
    fp32 = result["variants"]["fp32"]
    for v, m in result["variants"].items():
        m["vs_fp32"] = round(m["chunks_per_s"] / fp32["chunks_per_s"], 2)
        m["vs_fp32_cpu"] = round(m["chunks_per_cpu_s"] / fp32["chunks_per_cpu_s"], 2)
        print(f"{v:10s} {m['tokens_per_s']:7d} tokens/s {m['chunks_per_s']:6.1f} chunks/s  x{m['vs_fp32']} fp32 | "
              f"per CPU-s {m['tokens_per_cpu_s']:7d} tokens {m['chunks_per_cpu_s']:6.1f} chunks x{m['vs_fp32_cpu']}")
    return result


def _vectors(bot) -> np.ndarray:
    from qa_bot.index import _read_version, index_home

    _ = bot.index
    _, _, _, vectors, _ = _read_version(index_home(bot.settings.cache_dir, bot.settings.corpus_dir))
    return np.asarray(vectors)


def parity(args) -> dict:
    from qa_bot import eval as ev
    from qa_bot.index import embed_query
    from qa_bot.pipeline import QABot

    unknown = [x for x in args.sets if x not in SETS]
    if unknown:
        sys.exit(f"unknown set(s) {', '.join(unknown)}: choose from {', '.join(SETS)}")
    tmp = Path(tempfile.mkdtemp(prefix="qa_parity_"))
    bots: dict[tuple[str, str], QABot] = {}
    vecs: dict[tuple[str, str], np.ndarray] = {}
    load_before = os.getloadavg()
    out = {}
    pooled = {}
    try:
        for name in args.sets:
            corpus_dir = ROOT / SETS[name]
            for v in ("fp32", args.variant):
                key = (SETS[name], v)
                if key not in bots:
                    bots[key] = QABot(settings=settings_for(v, tmp / v, corpus_dir))
                    vecs[key] = _vectors(bots[key])
            ref_bot, bot = bots[(SETS[name], "fp32")], bots[(SETS[name], args.variant)]
            ref_c, var_c = vecs[(SETS[name], "fp32")], vecs[(SETS[name], args.variant)]
            chunks = list(bot.index.chunks)
            assert [c.id for c in chunks] == [c.id for c in ref_bot.index.chunks], "the two chunkings differ"
            corpus = ev.read_corpus(corpus_dir)
            questions = ev.load_questions(ROOT / "eval" / f"{name}.jsonl")
            texts = [q["question"] for q in questions]
            ref_q, var_q = embed_query(ref_bot.embedder, texts), embed_query(bot.embedder, texts)
            k = min(10, len(chunks))
            top_ref = np.argsort(-(ref_q @ ref_c.T), axis=1, kind="stable")[:, :k]
            top_var = np.argsort(-(var_q @ var_c.T), axis=1, kind="stable")[:, :k]
            cos_c, cos_q = (ref_c * var_c).sum(1), (ref_q * var_q).sum(1)
            row = {"corpus": SETS[name], "chunks": len(chunks), "questions": len(questions),
                   "cos_chunks_min": round(float(cos_c.min()), 4), "cos_chunks_mean": round(float(cos_c.mean()), 5),
                   "cos_questions_min": round(float(cos_q.min()), 4),
                   "cos_questions_mean": round(float(cos_q.mean()), 5),
                   "top10_overlap": round(float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_var)])), 4),
                   "top1_same": round(float((top_ref[:, 0] == top_var[:, 0]).mean()), 4)}
            counts = {which: {"n": 0, **{f"dense@{kk}": 0 for kk in (1, 5, 10)}, "hybrid": 0, "shown": 0}
                      for which in ("fp32", args.variant)}
            changed = []
            for qi, q in enumerate(questions):
                span = ev.locate_evidence(q.get("evidence"), corpus, q.get("source"))
                if not q.get("answerable", True) or span is None:
                    continue
                gold = {"source": span[0], "start": span[1], "end": span[2]}
                over = lambda s, a, b: ev.overlaps({"source": s, "start": a, "end": b}, gold)  # noqa: E731
                shown_sets = {}
                for which, b, top in (("fp32", ref_bot, top_ref), (args.variant, bot, top_var)):
                    c = counts[which]
                    c["n"] += 1
                    for kk in (1, 5, 10):
                        c[f"dense@{kk}"] += any(over(chunks[i].source, chunks[i].start, chunks[i].end) for i in top[qi, :kk])
                    p = b._prepare(q["question"], (), None)
                    c["hybrid"] += any(over(h.chunk.source, h.chunk.start, h.chunk.end) for h in p.hits)
                    c["shown"] += any(over(x.source, a, e) for x in p.sentences for a, e in ((x.start, x.end), *x.headings))
                    shown_sets[which] = [(x.source, x.start) for x in p.sentences]
                if shown_sets["fp32"] != shown_sets[args.variant]:
                    changed.append(q["id"])
            for which, c in counts.items():
                row[which] = {kk: (round(val / c["n"], 4) if kk != "n" else val) for kk, val in c.items()} if c["n"] else {"n": 0}
                for kk, val in c.items():
                    pooled.setdefault(which, {}).setdefault(kk, 0)
                    pooled[which][kk] += val
            row["shown_sentences_changed"] = changed
            out[name] = row
            a, b = row["fp32"], row[args.variant]
            if a.get("n"):
                print(f"{name:22s} n={a['n']:3d} cos min {row['cos_chunks_min']:.3f} top10 {row['top10_overlap']:.3f} | "
                      + "  ".join(f"{kk} {a[kk]:.3f}->{b[kk]:.3f}" for kk in ("dense@1", "dense@5", "dense@10", "hybrid", "shown"))
                      + f"  changed {len(changed)}", flush=True)
    finally:
        for b in bots.values():
            b.close()
        shutil.rmtree(tmp, ignore_errors=True)
    pooled_share = {w: {kk: (round(val / c["n"], 4) if kk != "n" else val) for kk, val in c.items()} for w, c in pooled.items()}
    print("pooled: " + "  ".join(f"{kk} {pooled_share['fp32'][kk]:.3f}->{pooled_share[args.variant][kk]:.3f}"
                                 for kk in ("dense@1", "dense@5", "dense@10", "hybrid", "shown")))
    return {"variant": args.variant, "reference": "fp32", "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
            "sets": out, "pooled": pooled_share}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bound")
    b.add_argument("--chunks", type=int, default=256)
    b.add_argument("--rounds", type=int, default=3)
    p = sub.add_parser("parity")
    p.add_argument("sets", nargs="*", default=list(SETS))
    p.add_argument("--variant", default="onnx-int8")
    for x in (b, p):
        x.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    result = bound(args) if args.what == "bound" else parity(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"embedder-{args.what}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
