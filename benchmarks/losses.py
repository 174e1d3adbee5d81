"""Where a run's answers are lost, by reason: `.venv/bin/python benchmarks/losses.py OUT/predictions.jsonl [...]`.

Each answerable question that is not answered right is put in one bin, from the run's own fields (`draft`,
`reason`, `evidence_shown`): the evidence was not among the sentences the reader was shown; the reader's draft
was right and a rule or the check refused it (which one: the refusal's reason); the reader found nothing; the
reader's draft was wrong (shown to the user, or caught by the rules); yes/no questions are binned apart. An
unanswerable question is lost when it is answered (a near miss shown).
"""
from __future__ import annotations

import collections
import json
import sys

from qa_bot.eval import answer_matches


def _draft(row: dict) -> str:
    try:
        return str(json.loads(row.get("draft") or "{}").get("answer", ""))
    except (ValueError, AttributeError):
        return ""


def _reason(row: dict) -> str:
    why = row.get("reason") or "?"
    return why.split(":")[0].split(";")[0][:70]


def bin_of(row: dict) -> str:
    """The loss bin of one predictions.jsonl row ("right" when nothing is lost)."""
    if row["correct"]:
        return "right"
    if not row["answerable"]:
        return "near miss answered"
    yes_no = "yes/no: " if {a.lower() for a in row["gold_answers"]} & {"yes", "no"} else ""
    if row.get("error"):
        return yes_no + "error"
    if row.get("evidence_shown") is False:
        return yes_no + "evidence not shown"
    draft = _draft(row)
    if row["abstained"]:
        if not draft:
            return yes_no + "reader found nothing"
        if answer_matches(draft, row["gold_answers"]):
            return yes_no + f"right draft refused: {_reason(row)}"
        return yes_no + "wrong draft caught"
    return yes_no + "wrong answer shown"


def classify(rows: list[dict]) -> dict[str, int]:
    return dict(collections.Counter(bin_of(r) for r in rows if bin_of(r) != "right").most_common())


def summary(rows: list[dict]) -> dict:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    yn = [r for r in ans if {a.lower() for a in r["gold_answers"]} & {"yes", "no"}]
    answered = [r for r in ans if not r["abstained"] and not r.get("error")]
    cites = [c for r in answered if r.get("evidence_span") for c in r["citations"]]
    relevant = sum(len(r["relevant_citations"]) for r in answered if r.get("evidence_span"))
    words = sorted(r["answer_words"] for r in answered if r.get("answer_words") is not None)
    return {
        "right": f"{sum(r['correct'] for r in ans)}/{len(ans)}",
        "right_rate": round(sum(r["correct"] for r in ans) / max(1, len(ans)), 3),
        "refused_unanswerable": f"{sum(r['abstained'] for r in una)}/{len(una)}",
        "false_refusals": round(sum(r["abstained"] for r in ans) / max(1, len(ans)), 3),
        "wrong_shown": sum(1 for r in ans if not r["abstained"] and not r["correct"]),
        "yes_no_right": f"{sum(r['correct'] for r in yn)}/{len(yn)}",
        "wrong_no": sum(1 for r in yn if not r["correct"] and r["answer"].lower().startswith("no")),
        "citation_precision": round(relevant / len(cites), 3) if cites else None,
        "median_words": words[len(words) // 2] if words else None,
        "p50_s": sorted(r["latency_s"] for r in rows)[len(rows) // 2] if rows else None,
    }


def main(paths: list[str]) -> int:
    for path in paths:
        rows = [json.loads(x) for x in open(path, encoding="utf-8") if x.strip()]
        print(path, json.dumps(summary(rows)))
        for k, v in classify(rows).items():
            print(f"  {v:3d}  {k}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
