"""What each grounding rule, and the reader's context budget, is worth on a question set.

    .venv/bin/python benchmarks/ablation.py QUESTIONS.jsonl --corpus DIR --out DIR [--budgets 150,300,600,1000]
        [--variants shipped,no-names,...]

Each variant asks every question through the whole pipeline (`qa_bot.eval.run_eval`, the same scorer as
`qa-bot eval`) with one family of rules switched off. Every reply of the reader is kept on disk by its prompt
(`OUT/replies.jsonl`), so a rule switched off costs only the prompts no earlier run sent (a check of an answer the
shipped rules refused); the reader's drafts are the same in every variant. The budgets run the shipped rules
with `reader_tokens` at each value. Prints one row per run: right (of answerable), refusals of unanswerable,
false refusals, wrong answers, yes/no right, and `benchmarks/losses.py`'s losses by reason.

Not a test: it changes module functions in this process only, to measure what they decide.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from losses import classify, summary  # noqa: E402

from qa_bot import QABot, Settings, cite, constraints, ground  # noqa: E402
from qa_bot.eval import run_eval  # noqa: E402
from qa_bot.reader import Reply  # noqa: E402

# Each family of rules, switched off. A family is the rules that make one kind of decision (ground.py, and the
# question's constraints in constraints.py: ground.py calls those through their module, so replacing one there counts).
VARIANTS = {
    "shipped": {},
    "no-names": {(constraints, "question_names"): lambda q: set()},
    "no-numbers": {(constraints, "question_numbers"): lambda q: set()},
    "no-metadata": {(constraints, "constraints_missing_around"): None},  # replaced below: the sentence without `about`
    "no-abbreviations": {(constraints, "abbreviated_names"): lambda q, t: set()},
    "no-kind": {(cite, "answers_kind"): lambda a, q: True},
    "no-yes-rule": {(ground, "confirms"): lambda q, t: True},
    "never-no": {(ground, "denies"): lambda q, t: False},
    "any-no": {(ground, "denies"): lambda q, t: True},
    "yes-no-reader": {(ground, "confirms"): lambda q, t: True, (ground, "denies"): lambda q, t: True},
    "no-headings": {(constraints, "heading_text"): lambda s, doc: "", (constraints, "lead_sentence"): lambda s, doc: "",
                    (constraints, "section_text"): lambda s, doc: ""},
    "no-demonyms": {(constraints, "demonyms"): lambda place: set()},
    "no-completion": {(ground, "complete_answer"): lambda a, e, q="": a},
    "yes-no-any-terms": {(ground, "YES_NO_TERMS"): 0.0},  # a verdict's sentence need not hold the question's terms
    "no-check": {},  # settings: reader_check off
    "checked-no": {(ground, "needs_check"): None},  # replaced below: a grounded "No" is sent to the check too
}



def _without_metadata():
    from dataclasses import replace

    original = constraints.constraints_missing_around
    return lambda q, s, doc: original(q, replace(s, about=""), doc)


@contextlib.contextmanager
def patched(name: str):
    changes = dict(VARIANTS[name])
    if name == "no-metadata":
        changes = {(constraints, "constraints_missing_around"): _without_metadata()}
    if name == "checked-no":
        original = ground.needs_check
        changes = {(ground, "needs_check"): lambda q, found: found.answer == "No" or original(q, found)}
    saved = {(m, a): getattr(m, a) for m, a in changes}
    try:
        for (m, a), f in changes.items():
            setattr(m, a, f)
        yield
    finally:
        for (m, a), f in saved.items():
            setattr(m, a, f)


def memoise(bot: QABot, path: Path) -> None:
    """bot's LLM calls answered from `path` when the same prompt was sent before; new replies appended."""
    cache: dict[str, tuple] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            cache[row["key"]] = (row["text"], tuple(row["logprobs"]), row["finish"])
    original = bot.reader.invoke

    def invoke(system, user, schema, name, until=None, top_logprobs=0, stop=()):
        key = hashlib.sha256(json.dumps([system, user, name, top_logprobs, list(stop)]).encode()).hexdigest()
        if key not in cache:
            r = original(system, user, schema, name, until, top_logprobs, stop)
            cache[key] = (r.text, r.logprobs, r.finish)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "text": r.text, "logprobs": list(r.logprobs), "finish": r.finish}) + "\n")
        return Reply(*cache[key])

    bot.reader.invoke = invoke  # type: ignore[method-assign]


def make_bot(corpus: str, out: Path, **settings) -> QABot:
    s = Settings.from_env(corpus_dir=corpus, llm_timeout=float(os.environ.get("QA_BOT_LLM_TIMEOUT", 1200)), **settings)
    bot = QABot(corpus, settings=s)
    memoise(bot, out / "replies.jsonl")
    return bot


def run(bot: QABot, questions: str, corpus: str, out: Path, label: str, variant: str) -> dict:
    shipped = bot.settings
    if variant == "no-check":
        bot.settings = shipped.replace(reader_check=False)
    try:
        with patched(variant):
            metrics = run_eval(questions, bot=bot, corpus_dir=corpus, out_dir=out / label, progress=False)
    finally:
        bot.settings = shipped
    rows = [json.loads(x) for x in (out / label / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"run": label, **summary(rows), "losses": classify(rows), "load": metrics["run"].get("loadavg_end")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budgets", default="", help="reader_tokens values to run with the shipped rules")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--prefix", default="", help="prefix of the variants' output folders (a second round of rules)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for b in [int(x) for x in args.budgets.split(",") if x]:
        with contextlib.closing(make_bot(args.corpus, out, reader_tokens=b)) as bot:
            results.append(run(bot, args.questions, args.corpus, out, f"budget-{b}", "shipped"))
        print(json.dumps(results[-1]), flush=True)
    variants = [x for x in args.variants.split(",") if x]
    if variants:
        with contextlib.closing(make_bot(args.corpus, out)) as bot:
            for v in variants:
                results.append(run(bot, args.questions, args.corpus, out, args.prefix + v, v))
                print(json.dumps(results[-1]), flush=True)
    (out / "ablation.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
