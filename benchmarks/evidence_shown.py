"""Does the evidence reach the reader? Retrieval only, no LLM: seconds, not the eval's minutes.

    .venv/bin/python benchmarks/evidence_shown.py [SET ...] [--misses] [--out benchmarks/results]

For each answerable question with `evidence` in a question file, the question goes through the bot's own
preparation (clean, retrieve, pick the sentences) and counts as "shown" when the evidence overlaps one of the
sentences the reader is given first, or a heading in that sentence's label (a release's date is often only in
its heading); "later look" counts the others whose evidence is on a later page, read only when the first gives no
verified answer (with QA_BOT_READER_LOOKS=2 or more). Also the evidence sentence's position in the full sentence
ranking, before the reader's cut (`reader_sentences`, `reader_chars`): "none" means its chunk was not retrieved.

A question the reader is not shown the evidence for can only be refused or answered wrongly, whatever the
reader: this is the ceiling of the eval's "right", and a change to retrieval can be judged here first, then
run through the LLM only on the questions whose shown sentences changed (`--out` records them per question).
Settings come from the environment as usual (QA_BOT_FUSION_KEEP=0 shows plain reciprocal-rank fusion).
SET names a file eval/SET.jsonl; the corpus is the one eval/README.md pairs it with.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = {"article_qa": "docs_corpus", "paraphrase_tune": "docs_corpus", "paraphrase_test": "docs_corpus",
          "counts_article": "docs_corpus", "news_tune": "eval/news_corpus", "news_test": "eval/news_corpus",
          "licenses_tune": "eval/licenses_corpus", "licenses_test": "eval/licenses_corpus",
          "counts_licenses": "eval/licenses_corpus",
          "readmes_tune": "eval/readmes_corpus", "readmes_test": "eval/readmes_corpus",
          "fresh_tune": "eval/fresh_corpus", "fresh_test": "eval/fresh_corpus",
          **{f"{c}_{half}": f"eval/{c}_corpus" for c in ("sixth", "seventh", "eighth", "ninth", "tenth")
             for half in ("tune", "test")},
          **{f"{kind}_{c}_{half}": f"eval/{c}_corpus" for kind in ("compare", "no") for c in ("news", "readmes", "licenses")
             for half in ("tune", "test")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", default=list(CORPUS), help="question sets (default: all of eval/)")
    ap.add_argument("--misses", action="store_true", help="list the questions whose evidence is not shown")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    unknown = [s for s in args.sets if s not in CORPUS]
    if unknown:
        sys.exit(f"unknown set(s) {', '.join(unknown)}: choose from {', '.join(CORPUS)}")

    from qa_bot.eval_questions import load_questions, locate_evidence, read_corpus
    from qa_bot.eval_score import overlaps
    from qa_bot import ground
    from qa_bot.pipeline import QABot

    bots: dict[str, QABot] = {}
    results, shown_by_question = {}, {}
    print(f"{'set':16} {'shown':>9}  later look  position of the evidence in the full sentence ranking")
    for name in args.sets:
        corpus_dir = ROOT / CORPUS[name]
        bot = bots.get(CORPUS[name]) or bots.setdefault(CORPUS[name], QABot(corpus_dir))
        corpus = read_corpus(corpus_dir)
        n = shown = later = 0
        positions: collections.Counter = collections.Counter()
        misses = []
        for q in load_questions(ROOT / "eval" / f"{name}.jsonl"):
            p = bot.prepare(q["question"], (), None)
            shown_by_question[f"{name}/{q['id']}"] = [[x.source, x.start] for x in p.sentences]
            span = locate_evidence(q.get("evidence"), corpus, q.get("source"))
            if not q.get("answerable", True) or span is None:
                continue
            gold = {"source": span[0], "start": span[1], "end": span[2]}

            def hit(x, gold=gold) -> bool:
                return any(overlaps({"source": x.source, "start": a, "end": b}, gold)
                           for a, b in ((x.start, x.end), *x.headings))

            n += 1
            if any(hit(x) for x in p.sentences):
                shown += 1
            else:
                misses.append(q)
                later += any(hit(x) for page in p.later for x in page)
            ranked = bot.retriever.sentences(p.query, p.hits, 1000, usable=ground.can_ground(p.query))  # as _prepare ranks
            pos = next((i for i, x in enumerate(ranked) if hit(x)), None)
            positions["none" if pos is None else str(pos + 1) if pos < 5 else "6+"] += 1
        results[name] = {"answerable_with_evidence": n, "shown": shown, "share": round(shown / n, 3) if n else None,
                         "shown_in_a_later_look": later,
                         "positions": dict(positions), "not_shown": [q["id"] for q in misses]}
        order = ["1", "2", "3", "4", "5", "6+", "none"]
        print(f"{name:16} {shown:>3}/{n:<3} {shown / max(n, 1):.2f}  +{later:<2}       "
              + " ".join(f"{k}:{positions[k]}" for k in order))
        if args.misses:
            for q in misses:
                print(f"    {q['id']:6} {q['question'][:100]}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "evidence_shown.json", "w") as fh:
        json.dump({"sets": results, "shown_sentences": shown_by_question}, fh, indent=1)
    print(f"wrote {out / 'evidence_shown.json'}")


if __name__ == "__main__":
    main()
