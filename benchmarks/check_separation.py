"""How well does the check tell right answers from wrong ones? Re-runs only the check, on recorded drafts.

    .venv/bin/python benchmarks/check_separation.py RUN_DIR [--system FILE] [--user FILE] [--name NAME]

RUN_DIR holds one folder per question set of eval/ (named as in benchmarks/evidence_shown.py), each with the
`predictions.jsonl` that `qa-bot eval ... --out RUN_DIR/SET` wrote. For every recorded reader draft that still
grounds and needs the check (ground.needs_check), the check is asked again, with the shipped prompts or with
the system prompt / user template read from FILE, and its P(yes) recorded beside whether the answer is right
(it matches the gold answers; an answer to an unanswerable question never is). Printed per half (tuning: the
`_tune` sets, the dev set and the counts sets; test: the `_test` sets): the AUC of P(yes), right answers vs
the rest, and at each threshold the right answers kept and the wrong ones let through.

A check prompt is then judged on the tuning half, and `check_min_yes` fit there, without re-running the reader:
llama.cpp is deterministic at temperature 0, so the drafts are what the reader would write again. Needs the
default LLM; ~4 s a check on 2 cores (121 checks on eval/ at commit 2fc8b9b: ~13 min on a slow machine).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evidence_shown import CORPUS  # noqa: E402  (the set -> corpus pairing of eval/README.md)

THRESHOLDS = (0.5, 0.55, 0.575, 0.6, 0.65, 0.7)


def tuning(name: str) -> bool:
    return not name.endswith("_test")


def auc(good: list[float], bad: list[float]) -> float | None:
    """P(a right answer's score > a wrong one's), ties counting half."""
    if not good or not bad:
        return None
    return sum((g > b) + 0.5 * (g == b) for g in good for b in bad) / (len(good) * len(bad))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", help="folder with SET/predictions.jsonl from qa-bot eval")
    ap.add_argument("--system", help="file holding a check system prompt to try instead of prompts.CHECK_SYSTEM")
    ap.add_argument("--user", help="file holding a user template ({evidence}, {question}, {answer}) instead of prompts.CHECK_USER")
    ap.add_argument("--name", default="shipped", help="name of this trial in the results file")
    ap.add_argument("--all", action="store_true", help="also check the drafts the bot does not check (every key term of "
                    "the question in the evidence), reported apart: what checking every answer would change")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    run = Path(args.run_dir)
    sets = [s for s in CORPUS if (run / s / "predictions.jsonl").is_file()]
    if not sets:
        sys.exit(f"no SET/predictions.jsonl under {run} for any set of: {', '.join(CORPUS)}")

    for f in (args.system, args.user):
        if f and not Path(f).is_file():
            sys.exit(f"no such prompt file: {f}")
    system = Path(args.system).read_text() if args.system else None  # None: the shipped prompts
    user = Path(args.user).read_text() if args.user else None
    if user is not None:
        try:
            user.format(evidence="", question="", answer="")
        except (KeyError, IndexError, ValueError) as e:
            sys.exit(f"{args.user}: a user template may use only {{evidence}}, {{question}} and {{answer}} ({e!r})")

    from qa_bot import eval as ev
    from qa_bot import ground
    from qa_bot.pipeline import QABot

    bots: dict[str, QABot] = {}
    records = []
    for name in sets:
        bot = bots.get(CORPUS[name]) or bots.setdefault(CORPUS[name], QABot(ROOT / CORPUS[name]))
        for line in (run / name / "predictions.jsonl").read_text().splitlines():
            r = json.loads(line)
            draft = r.get("draft") or ""
            if not draft.startswith("{"):  # refused before reading, or an overview
                continue
            p = bot.prepare(r["question"], (), None)
            found, _ = ground.ground(ground.parse_reader(draft), p.query, p.sentences, bot.document(None))
            needed = found is not None and ground.needs_check(p.query, found)
            if found is None or not (needed or args.all):
                continue
            verdict, p_yes = bot.reader.check(found, p, system=system, user=user)
            score = p_yes if p_yes is not None else float(verdict == "yes")
            right = bool(r.get("answerable")) and ev.answer_matches(found.answer, r.get("gold_answers") or ())
            records.append({"set": name, "id": r["id"], "answer": found.answer, "right": right, "needs_check": needed,
                            "verdict": verdict, "p_yes": round(score, 4)})
    for bot in bots.values():
        bot.close()

    summary = {}
    halves = [("tuning", True, True), ("test", False, True)]
    if args.all:
        halves += [("tuning, not checked by the bot", True, False), ("test, not checked by the bot", False, False)]
    for half, tune, needed in halves:
        rs = [x for x in records if tuning(x["set"]) == tune and x["needs_check"] == needed]
        good = [x["p_yes"] for x in rs if x["right"]]
        bad = [x["p_yes"] for x in rs if not x["right"]]
        a = auc(good, bad)
        summary[half] = {"right": len(good), "wrong": len(bad), "auc": None if a is None else round(a, 3),
                         "at": {str(t): {"right_kept": sum(g >= t for g in good), "wrong_passed": sum(b >= t for b in bad)}
                                for t in THRESHOLDS}}
        print(f"{half}: {len(good)} right, {len(bad)} wrong answers checked; AUC {'-' if a is None else f'{a:.3f}'}")
        for t in THRESHOLDS:
            at = summary[half]["at"][str(t)]
            print(f"  P(yes) >= {t:<5}: right kept {at['right_kept']:>3}/{len(good)}, wrong let through {at['wrong_passed']:>3}/{len(bad)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"check_separation-{args.name}.json"
    path.write_text(json.dumps({"run_dir": str(run), "summary": summary, "checks": records}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
