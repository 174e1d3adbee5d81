"""Twentieth-round trial: does the reader's own confidence in its answer tell right answers from wrong ones?

    .venv/bin/python benchmarks/check_trials/reader_confidence.py RUN_DIR > reader_confidence.jsonl

RUN_DIR holds one `qa-bot eval --out` folder per question set (as eval/README.md runs them). Every question is
prepared again (retrieval only) and put to the shipped reader with the same prompt, schema and stop, now asking
the server for each written token's log-probability. llama.cpp is deterministic at temperature 0, so the draft
is the recorded one (a line says whether it is). Then the shipped grounding and, where the bot would ask it,
the shipped check (its p(yes)). A line per question: the set, id, whether it is answerable, the draft's answer
and whether it matches the gold answers, why grounding refused it (if it did), the check's p(yes) (if asked),
what the bot recorded, and the reader's confidence: the probability of each token of its answer.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from evidence_shown import CORPUS  # noqa: E402  (which corpus each question set is asked over)

from qa_bot import eval as ev  # noqa: E402
from qa_bot import ground, prompts  # noqa: E402
from qa_bot.pipeline import QABot  # noqa: E402
from qa_bot.reader.render import numbered  # noqa: E402


def answer_token_probs(tokens) -> list[float]:
    """The probabilities of the tokens written inside the answer's string: after '"answer"', from the token
    that opens its value up to the closing quote (the reply is cut there by prompts.READER_STOP)."""
    text, spans = "", []
    for t in tokens:
        spans.append((len(text), t.get("token", ""), t.get("logprob")))
        text += t.get("token", "")
    key = text.find('"answer"')
    if key < 0:
        return []
    open_q = text.find('"', text.find(":", key) + 1)
    close_q = text.find('"', open_q + 1)
    close_q = len(text) if close_q < 0 else close_q
    out = []
    for start, tok, lp in spans:
        end = start + len(tok)
        if end > open_q + 1 and start < close_q and lp is not None:
            out.append(math.exp(lp))
    return out


def main() -> None:
    run = Path(sys.argv[1])
    bots: dict[str, QABot] = {}
    for f in sorted(run.glob("*/predictions.jsonl")):
        name = f.parent.name
        corpus = CORPUS.get(name)
        if corpus is None:
            continue
        bot = bots.setdefault(corpus, QABot(ROOT / corpus))
        for line in f.read_text().splitlines():
            r = json.loads(line)
            p = bot.prepare(r["question"], [], None)
            user = prompts.READER_USER.format(sentences=numbered(p.sentences, p.several), question=p.query)
            reply = bot.reader.invoke(prompts.READER_SYSTEM, user, prompts.READER_SCHEMA, "reader",
                                top_logprobs=2, stop=prompts.READER_STOP)
            draft = ground.parse_reader(reply.text, cut_at_stop=reply.finish != "length")
            probs = answer_token_probs(reply.logprobs)
            found, why = ground.ground(draft, p.query, p.sentences, bot.document(None)) if p.sentences else (None, "no sentences")
            p_yes = None
            if found is not None and ground.needs_check(p.query, found):
                _, p_yes = bot.reader.check(found, p)
            out = {"set": name, "id": r["id"], "answerable": r["answerable"], "draft": draft.answer,
                   "same_draft": ground.parse_reader(r.get("draft") or "").answer == draft.answer,
                   "draft_right": bool(r["answerable"] and draft.answer and ev.answer_matches(draft.answer, r["gold_answers"])),
                   "grounded": found is not None, "why": why, "p_yes": p_yes,
                   "recorded_correct": r["correct"], "recorded_abstained": r["abstained"],
                   "probs": [round(x, 4) for x in probs],
                   "first": round(probs[0], 4) if probs else None,
                   "min": round(min(probs), 4) if probs else None,
                   "mean_logprob": round(sum(math.log(max(x, 1e-9)) for x in probs) / len(probs), 4) if probs else None}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
