"""Whether a change of code keeps every prediction of `qa-bot eval` the same.

    .venv/bin/python scripts/same_predictions.py record QUESTIONS.jsonl --corpus DIR --out DIR
    .venv/bin/python scripts/same_predictions.py check QUESTIONS.jsonl --corpus DIR --out DIR

`record` runs the eval with the configured reader behind qa_bot.testing.ReplayLLM, which keeps every prompt's
reply (OUT/replies.jsonl) beside the predictions (OUT/predictions.jsonl). `check` runs it again with those
replies only: a prompt the recorded code never sent stops the run and is printed (the reader is shown
something new), and each prediction that differs in any field but its timings is printed. Exit status 0 when
every prediction is the same. The reader's replies are fixed, so what is compared is everything qa_bot does
around them: cleaning, retrieval, the prompts, grounding, the check's use and the citations.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from qa_bot import QABot, Settings
from qa_bot.eval import run_eval
from qa_bot.llm import LLMProvider
from qa_bot.testing import UnrecordedPrompt, _replay_llm_class

TIMED = {"latency_s", "timings"}  # fields that differ from run to run


def _rows(path: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return {r["id"]: {k: v for k, v in r.items() if k not in TIMED} for r in rows}


def differences(before: Path, after: Path) -> list[str]:
    """One line per prediction (by id) that is missing, added or differs in a field other than its timings."""
    a, b = _rows(before), _rows(after)
    out = [f"{i}: missing" for i in a if i not in b] + [f"{i}: added" for i in b if i not in a]
    for i in a.keys() & b.keys():
        fields = sorted(k for k in a[i].keys() | b[i].keys() if a[i].get(k) != b[i].get(k))
        out += [f"{i}: {k}: {json.dumps(a[i].get(k))[:200]} -> {json.dumps(b[i].get(k))[:200]}" for k in fields]
    return sorted(out)


def run(questions: str, corpus: str, replies: Path, out_dir: Path, record: bool) -> None:
    settings = Settings.from_env(corpus_dir=corpus, llm_timeout=float(os.environ.get("QA_BOT_LLM_TIMEOUT", 1200)))
    provider = LLMProvider(settings)
    llm = _replay_llm_class()(path=str(replies), model=provider.get() if record else None)
    try:
        with contextlib.closing(QABot(corpus, settings=settings, llm=llm)) as bot:
            run_eval(questions, bot=bot, corpus_dir=corpus, out_dir=out_dir, progress=False)
    finally:
        provider.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["record", "check"])
    ap.add_argument("questions")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True, help="the recording's folder: replies.jsonl and predictions.jsonl")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.mode == "record":
        run(args.questions, args.corpus, out / "replies.jsonl", out, record=True)
        print(f"recorded {len(_rows(out / 'predictions.jsonl'))} predictions in {out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(args.questions, args.corpus, out / "replies.jsonl", Path(tmp), record=False)
        except Exception as exc:  # the warm-up's fixed prompts changed: raised as a BackendError around it
            if not isinstance(exc.__cause__ or exc, UnrecordedPrompt):
                raise
            print(f"DIFFERENT: the reader was sent a prompt the recording never sent: {exc}")
            return 1
        diff = differences(out / "predictions.jsonl", Path(tmp) / "predictions.jsonl")
    for line in diff:
        print(line)
    print(f"{'SAME' if not diff else 'DIFFERENT'}: {len(_rows(out / 'predictions.jsonl'))} predictions, "
          f"{len(diff)} differences ({args.questions})")
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
