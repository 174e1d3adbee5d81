"""Does a faster embedding precision rank passages as fp32 does? Agreement of top-10 rankings on real questions.

    .venv/bin/python benchmarks/precision.py [--k 10] [--out benchmarks/results]

For each question set (eval/article_qa.jsonl over docs_corpus, eval/news_qa.jsonl over eval/news_corpus,
eval/licenses_qa.jsonl over eval/licenses_corpus), the corpus is chunked as the index chunks it, and chunks and
questions are embedded at each precision (queries at the index's own precision, as the bot does). Per question:
  same_set      the top-k chunk set equals fp32's
  same_order    the top-k list equals fp32's, in order
  top1          the best chunk equals fp32's
  overlap       |top-k ∩ fp32's top-k| / k, averaged
Variants: bf16 and int8 for chunks and questions alike, and bf16+fp32q / int8+fp32q (chunks at that precision,
questions at fp32).
plus chunks/s of embedding. qa_bot's "auto" precision picks the fastest variant whose same_set agreement is
>= 99% (bf16 here); the figures are written to <out>/precision.json. Agreement is exact; speed on a shared
machine is indicative (the load average is recorded).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot.embed import SentenceTransformerEmbedder, cpu_supports_bf16  # noqa: E402
from qa_bot.ingest import chunk_documents, load_corpus  # noqa: E402
from qa_bot.settings import Settings  # noqa: E402

SETS = [("eval/article_qa.jsonl", "docs_corpus"), ("eval/news_qa.jsonl", "eval/news_corpus"),
        ("eval/licenses_qa.jsonl", "eval/licenses_corpus")]
VARIANTS = ("fp32", "bf16", "int8")
# (chunk precision, query precision): the index's vectors at one, questions at another. fp32 questions cost
# nothing at index time (one short text per question) and halve the rounding between the two sides.
COMBOS = {"bf16": ("bf16", "bf16"), "int8": ("int8", "int8"), "bf16+fp32q": ("bf16", "fp32"),
          "int8+fp32q": ("int8", "fp32")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    s = Settings()
    load = os.getloadavg()
    embedders = {v: SentenceTransformerEmbedder(quantize=None if v == "fp32" else v) for v in VARIANTS}
    counter = embedders["fp32"]
    per_set, speed = [], {v: [0, 0.0] for v in VARIANTS}
    totals = {v: {"same_set": 0, "same_order": 0, "top1": 0, "overlap": 0.0} for v in COMBOS}
    n_total = 0
    for qa_file, corpus in SETS:
        docs, _ = load_corpus(ROOT / corpus, s.max_file_bytes)
        chunks = chunk_documents(docs, max_chars=s.chunk_chars, max_tokens=s.chunk_max_tokens,
                                 count_tokens=counter.count_tokens)
        questions = [json.loads(line)["question"] for line in (ROOT / qa_file).read_text().splitlines() if line.strip()]
        k = min(args.k, len(chunks))
        cvs, qvs = {}, {}
        for v, emb in embedders.items():
            emb.embed(["warm up"])
            t = time.perf_counter()
            cv = emb.embed([c.text for c in chunks])
            speed[v][0] += len(chunks)
            speed[v][1] += time.perf_counter() - t
            cvs[v], qvs[v] = cv, emb.embed(questions)
        top = lambda c, q: np.argsort(-(qvs[q] @ cvs[c].T), axis=1, kind="stable")[:, :k]  # noqa: E731
        a = top("fp32", "fp32")
        row = {"set": qa_file, "corpus": corpus, "chunks": len(chunks), "questions": len(questions), "k": k}
        for v, (c, q) in COMBOS.items():
            b = top(c, q)
            same_set = sum(set(x) == set(y) for x, y in zip(a, b))
            same_order = int((a == b).all(axis=1).sum())
            top1 = int((a[:, 0] == b[:, 0]).sum())
            overlap = float(sum(len(set(x) & set(y)) for x, y in zip(a, b)) / k)
            row[v] = {"same_set": same_set, "same_order": same_order, "top1": top1, "overlap": overlap}
            for key, val in row[v].items():
                totals[v][key] += val
        n_total += len(questions)
        per_set.append(row)
        print(f"{qa_file:26s} {len(chunks):5d} chunks {len(questions):3d} questions  "
              + "  ".join(f"{v}: set {row[v]['same_set']}/{len(questions)} order {row[v]['same_order']} "
                          f"top1 {row[v]['top1']}" for v in COMBOS))
    summary = {v: {"chunks_per_s": round(speed[v][0] / speed[v][1], 1)} for v in VARIANTS}
    summary.update({v: {"chunks_per_s": summary[c]["chunks_per_s"],
                        **{kk: round(val / n_total, 4) for kk, val in totals[v].items()}}
                    for v, (c, _) in COMBOS.items()})
    print(f"\nall {n_total} questions (load {load[0]:.2f}):")
    for v, m in summary.items():
        print(f"  {v:5s} {m['chunks_per_s']:6.1f} chunks/s  "
              + (f"top-{args.k} same set {m['same_set']:.1%}, in order {m['same_order']:.1%}, top-1 {m['top1']:.1%}, "
                 f"mean overlap {m['overlap']:.1%}" if v != "fp32" else "(reference)"))
    result = {"k": args.k, "load_avg": load, "cpu_supports_bf16": cpu_supports_bf16(), "questions": n_total,
              "sets": per_set, "summary": summary,
              "rule": "auto = fastest precision with top-k set agreement >= 0.99 where the CPU supports it"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out / 'precision.json'}")


if __name__ == "__main__":
    main()
