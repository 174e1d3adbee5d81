"""Eighteenth-round trial (dropped): may a yes/no question be answered "No" when the reader says "no"?

    .venv/bin/python benchmarks/check_trials/no_answers.py RUN_DIR > no_answers.jsonl

RUN_DIR holds one `qa-bot eval --out` folder per question set (as eval/README.md runs them). For every
yes/no question, each shown sentence that holds a negation or removal the question lacks (ground._NEGATION) is
put to the shipped check with the answer "No"; a line per sentence: the set, the question, its gold answer,
the reader's recorded yes/no word, whether the reader named that sentence, and the check's verdict and p(yes).
Retrieval and the check only: no reader call (the reader's word is the recorded draft's).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from evidence_shown import CORPUS  # noqa: E402  (which corpus each question set is asked over)

from qa_bot import ground  # noqa: E402
from qa_bot.pipeline import QABot  # noqa: E402


def main() -> None:
    run = Path(sys.argv[1])
    bots: dict[str, QABot] = {}
    for f in sorted(run.glob("*/predictions.jsonl")):
        corpus = CORPUS.get(f.parent.name)
        if corpus is None:
            continue
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if not ground.is_yes_no(r["question"]) or ground._NEGATION.search(r["question"]):
                continue
            bot = bots.setdefault(corpus, QABot(ROOT / corpus))
            draft = ground.parse_reader(r.get("draft") or "")
            p = bot.prepare(r["question"], [], None)
            doc = bot.document(None)
            for i, s in enumerate(p.sentences, 1):
                text = doc(s.source)[s.start:s.end]
                if not ground._NEGATION.search(text):
                    continue
                verdict, p_yes = bot.reader.check(ground.Grounded("No", s.source, s.start, s.end, text, s.label), p)
                print(json.dumps({"set": f.parent.name, "id": r["id"], "gold": r["gold_answers"][0] if r["answerable"] else None,
                                  "reader": draft.answer.lower(), "named": draft.sentence == i, "verdict": verdict,
                                  "p_yes": p_yes, "sentence": " ".join(text.split())}), flush=True)


if __name__ == "__main__":
    main()
