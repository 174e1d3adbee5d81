"""Conversations with follow-ups, through the real bot: is each follow-up understood, answered right, or refused
when the earlier turn's subject has no such fact, and what the rewrite costs.

    .venv/bin/python benchmarks/followups.py eval/followups_tune.jsonl [--out FILE] [--rule-only] [--only ID,...] [--why]

The set's format is docs/followups.md's (one conversation a line: its corpus, "article" or "news", and its turns,
each a question with its accepted answers, or none when it must be refused, and whether it depends on the turns
before it). Each conversation is asked turn by turn with the chat's own memory (qa_bot.chat.Conversation: a
rewritten follow-up is remembered as searched for) from the default settings (QA_BOT_* variables apply), over
docs_corpus/ or eval/news_corpus/, after a warm-up. A turn is right when its answer holds an accepted answer
(qa_bot.eval.answer_matches), or, for a turn that must be refused, when it is refused.

Reported, for the follow-up turns (every turn after the first): right, false refusals, must-refuse turns refused
and answered (wrong), how each was rewritten (by the reader, by the rule, not at all), and the rewrite stage's
time (Answer.timings["rewrite"]): p50/p95 for turns the reader rewrote, and for turns nothing rewrote. The reading
after a rewrite is shown beside reading after no rewrite (a rewrite call may displace the reader's cached prompt).
The machine's load average before and after is recorded: timings on a busy machine are inflated.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot.chat import DONE, Conversation, Turn  # noqa: E402
from qa_bot.eval import answer_matches  # noqa: E402
from qa_bot.settings import Settings  # noqa: E402

CORPORA = {"article": ROOT / "docs_corpus", "news": ROOT / "eval" / "news_corpus"}
RULE_MARK = "(following up on:"  # the deterministic rule's form (question.standalone_question, followup.rule)


def load(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            assert row["corpus"] in CORPORA and row["turns"] and all("question" in t for t in row["turns"])
        except (ValueError, KeyError, AssertionError, TypeError):
            raise SystemExit(f"{path}:{n}: not a conversation in the format of docs/followups.md") from None
        rows.append(row)
    return rows


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def run(conversations: list[dict], settings: Settings) -> list[dict]:
    from qa_bot import QABot

    records = []
    for corpus in CORPORA:
        convs = [c for c in conversations if c["corpus"] == corpus]
        if not convs:
            continue
        bot = QABot(settings=settings.replace(corpus_dir=CORPORA[corpus]))
        try:
            bot.warm_up()
            bot.ask("What does it say?")  # one untimed question: first-question set-up is not a turn's cost
            previous_rewrite = False
            for conv in convs:
                chat = Conversation()
                for i, turn in enumerate(conv["turns"]):
                    t0 = time.perf_counter()
                    a = bot.ask(turn["question"], history=chat.history())
                    wall = time.perf_counter() - t0
                    by = ("rule" if RULE_MARK in a.standalone_question else "reader") if a.standalone_question else "none"
                    if turn["answerable"]:
                        right = not a.abstained and answer_matches(a.text, turn["answers"])
                    else:
                        right = a.abstained
                    records.append({
                        "id": conv["id"], "corpus": corpus, "turn": i + 1, "question": turn["question"],
                        "depends": turn.get("depends", i > 0), "answerable": turn["answerable"],
                        "answers": turn["answers"], "text": a.text, "abstained": a.abstained,
                        "searched": a.standalone_question, "by": by, "right": right, "wall": wall,
                        "timings": {k: round(v, 4) for k, v in a.timings.items()},
                        "after_rewrite": previous_rewrite})
                    previous_rewrite = by == "reader"
                    done = Turn(len(chat.snapshot()), turn["question"], DONE, a.text, searched=a.standalone_question or "")
                    chat = Conversation([*chat.snapshot(), done])
                    print(f"{conv['id']} t{i + 1} {'ok ' if right else 'BAD'} [{by:6}] {turn['question']!r} -> "
                          f"{a.text!r}" + (f"  (searched: {a.standalone_question!r})" if a.standalone_question else ""),
                          flush=True)
        finally:
            bot.close()
    return records


def summarise(records: list[dict]) -> dict:
    follow = [r for r in records if r["turn"] > 1]
    answerable = [r for r in follow if r["answerable"]]
    refuse = [r for r in follow if not r["answerable"]]
    by_reader = [r["timings"].get("rewrite", 0.0) for r in follow if r["by"] == "reader"]
    plain = [r["timings"].get("rewrite", 0.0) for r in records if r["by"] == "none"]
    read_after = [r["timings"]["read"] for r in records if "read" in r["timings"] and r["after_rewrite"]]
    read_other = [r["timings"]["read"] for r in records if "read" in r["timings"] and not r["after_rewrite"]
                  and r["by"] != "reader"]
    read_rewritten = [r["timings"]["read"] for r in records if "read" in r["timings"] and r["by"] == "reader"]

    def share(xs, of):
        return round(len(xs) / len(of), 3) if of else None

    return {
        "conversations": len({r["id"] for r in records}), "turns": len(records), "follow_up_turns": len(follow),
        "first_turns_right": share([r for r in records if r["turn"] == 1 and r["right"]],
                                   [r for r in records if r["turn"] == 1]),
        "follow_ups_right": share([r for r in follow if r["right"]], follow),
        "follow_ups_right_n": sum(r["right"] for r in follow),
        "answerable_follow_ups": len(answerable),
        "answerable_right": sum(r["right"] for r in answerable),
        "false_refusals": sum(r["abstained"] for r in answerable),
        "must_refuse_follow_ups": len(refuse),
        "must_refuse_refused": sum(r["abstained"] for r in refuse),
        "must_refuse_answered_wrong": sum(not r["abstained"] for r in refuse),
        "rewritten_by": {k: sum(r["by"] == k for r in follow) for k in ("reader", "rule", "none")},
        "dependent_turns_not_rewritten": sum(r["depends"] and r["by"] == "none" for r in follow),
        "plain_turns_rewritten": sum((not r["depends"]) and r["by"] != "none" for r in records),
        "rewrite_s_reader": {"n": len(by_reader), "p50": pct(by_reader, 50), "p95": pct(by_reader, 95),
                             "max": max(by_reader) if by_reader else None},
        "rewrite_s_plain": {"n": len(plain), "p50": pct(plain, 50), "max": max(plain) if plain else None},
        "read_s_p50": {"rewritten_turns": pct(read_rewritten, 50), "after_a_rewrite": pct(read_after, 50),
                       "other_turns": pct(read_other, 50)},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("conversations", type=Path)
    p.add_argument("--out", type=Path, default=None, help="JSON results (default benchmarks/results/followups-<name>.json)")
    p.add_argument("--rule-only", action="store_true", help="rewrite with the deterministic rule only (no reader call)")
    p.add_argument("--only", default="", help="comma-separated conversation ids")
    p.add_argument("--why", action="store_true", help="print each reader rewrite the checks did not use, and why")
    args = p.parse_args(argv)
    if args.why:
        import logging

        logging.basicConfig(format="  %(name)s: %(message)s")
        logging.getLogger("qa_bot.followup").setLevel(logging.DEBUG)
    conversations = load(args.conversations)
    if args.only:
        keep = set(args.only.split(","))
        conversations = [c for c in conversations if c["id"] in keep]
    settings = Settings.from_env(rewrite_with_reader=False if args.rule_only else None)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    records = run(conversations, settings)
    load_after = os.getloadavg()
    summary = summarise(records)
    summary.update(load_before=[round(x, 2) for x in load_before], load_after=[round(x, 2) for x in load_after],
                   seconds=round(time.perf_counter() - t0, 1), rule_only=args.rule_only, set=str(args.conversations))
    name = args.conversations.stem + ("-rule" if args.rule_only else "")
    out = args.out or ROOT / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "records": records}, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(json.dumps(summary, indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
