"""Evaluation: run the bot over a JSONL question file (run_eval) and the `qa-bot eval` command around it.

The parts: eval_questions.py reads the question file and locates each question's evidence in the corpus;
eval_score.py scores each answer and computes the figures (its docstring defines every metric); eval_report.py
writes metrics.json's record of the run and report.md. This module asks the questions, keeps each prediction
on disk as it is made (predictions.jsonl), and checks the command line's thresholds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .errors import QABotError, QuestionFileError
from .eval_questions import check_sources, load_questions, locate_evidence, read_corpus
from .eval_report import RunStart, describe_bot, feedback_summary, headline, run_info, write_report
from .eval_score import answer_matches, compute_metrics, make_record, quote_haystacks

__all__ = ["add_eval_arguments", "answer_matches", "check_thresholds", "cli_eval", "done_records", "load_questions",
           "run_eval"]  # answer_matches and load_questions: documented as qa_bot.eval's (docs/)


def done_records(path: Path, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a stopped run's predictions.jsonl that answer questions of this file (same id, same question),
    in the file's order; a line cut off when the run was stopped, or any other unreadable line, is left out."""
    asked = {q["id"]: q["question"] for q in questions}
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"cannot resume from {path}: {exc}") from None
    seen = set()
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict) and asked.get(row.get("id")) == row.get("question") and row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    return rows


def run_eval(questions_path: str | Path, *, bot: Any, corpus_dir: str | Path, out_dir: str | Path,
             progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Warm the bot up (untimed), ask it every question, write predictions.jsonl, metrics.json and report.md into out_dir; return metrics.

    Each prediction is appended to predictions.jsonl (flushed to disk) as soon as it is made, so a run stopped
    after 22 of 36 questions keeps those 22. resume: continue such a run in out_dir; the questions whose id is
    already there (with the same question) are not asked again, and the metrics cover all of them.

    A QABotError from bot.ask (e.g. an invalid question) is recorded on that row and scored as a wrong,
    non-abstained answer; any other exception propagates. metrics["run"] records what was run, on what and
    when (qa_bot.eval_report)."""
    from tqdm import tqdm

    start = RunStart.now()
    questions = load_questions(questions_path)
    corpus = read_corpus(corpus_dir)  # raises CorpusError when the folder is missing or unusable
    check_sources(questions, corpus, questions_path, corpus_dir)  # before any model is loaded
    haystacks = quote_haystacks(corpus)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # Load models before the clock starts, so latency figures are per question, not the first load.
    t0 = time.perf_counter()
    if callable(getattr(bot, "warm_up", None)):
        bot.warm_up()
    warm_up_s = time.perf_counter() - t0
    bot_info = describe_bot(bot)  # after the warm-up: the model is loaded

    predictions = out / "predictions.jsonl"
    records = done_records(predictions, questions) if resume else []
    done = {r["id"] for r in records}
    # The rows kept are written back first: a line cut off by the stop is dropped, the rest follow it.
    with open(predictions, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        todo = [q for q in questions if q["id"] not in done]
        bar = tqdm(todo, desc="eval", unit="q", file=sys.stderr, disable=not progress, dynamic_ncols=True,
                   initial=len(records), total=len(questions))
        for q in bar:
            records.append(_ask(bot, q, corpus, haystacks))
            f.write(json.dumps(records[-1], ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())  # a run killed at the next question keeps this one
            bar.set_postfix(correct=f"{sum(r['correct'] for r in records)}/{len(records)}")
    order = {q["id"]: i for i, q in enumerate(questions)}
    records.sort(key=lambda r: order[r["id"]])

    run = run_info(start, questions_path, corpus_dir, bot_info, resumed_with=len(done))
    metrics = {**compute_metrics(records), "warm_up_s": round(warm_up_s, 4), "run": run,
               "user_feedback": feedback_summary(bot)}
    if done:  # in the questions' order, as a run that was never stopped writes them
        with open(predictions, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_report(out, records, metrics, questions_path)
    return metrics


def _ask(bot: Any, q: dict[str, Any], corpus: dict[str, str], haystacks: list[str]) -> dict[str, Any]:
    """The predictions.jsonl row of one question: the bot asked (timed), its answer scored."""
    span = locate_evidence(q["evidence"], corpus, q["source"]) if q["answerable"] else None
    answer, error = None, None
    t0 = time.perf_counter()
    try:
        answer = bot.ask(q["question"])
    except QABotError as exc:
        error = str(exc) or type(exc).__name__
    latency_s = time.perf_counter() - t0
    return make_record(q, answer, latency_s, span, error, haystacks)


# ---------------------------------------------------------------- CLI


def _unit_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{s} is outside [0, 1]")
    return v


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("questions", help="JSONL question file: id, question, answers, answerable[, evidence, source] (docs/question_format.md)")
    parser.add_argument("--corpus", default=None, help="corpus folder (default: the configured docs_corpus/)")
    parser.add_argument("--out", default=None, help="output folder (default: eval/runs/<YYYYmmdd-HHMMSS>/)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a stopped run in --out: questions already in its predictions.jsonl (each "
                             "written as it is answered) are not asked again")
    parser.add_argument("--min-accuracy", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when answer accuracy is below X")
    parser.add_argument("--min-token-f1", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when token F1 over answerable questions is below X")
    parser.add_argument("--max-false-refusal", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when the false-refusal rate on answerable questions is above X")
    parser.add_argument("--min-abstention", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when refusal recall on unanswerable questions is below X")
    parser.add_argument("--min-citation-precision", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when citation precision is below X")
    return parser


THRESHOLDS = [  # (argument, metrics key); a min_ argument fails below its value, a max_ one above
    ("min_accuracy", "answer_accuracy"), ("min_token_f1", "token_f1"), ("min_abstention", "refusal_recall"),
    ("max_false_refusal", "false_refusal_rate"), ("min_citation_precision", "citation_precision")]


def check_thresholds(metrics: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(failures, notes). A figure that is n/a (empty denominator) is not checked and is noted instead."""
    failures, notes = [], []
    for attr, key in THRESHOLDS:
        limit = getattr(args, attr, None)
        if limit is None:
            continue
        value, option = metrics[key], "--" + attr.replace("_", "-")
        if value is None:
            notes.append(f"{key} is n/a for this question set; {option} not applied")
        elif attr.startswith("min_") and value < limit:
            failures.append(f"{key} {value:.3f} is below {option} {limit:.3f}")
        elif attr.startswith("max_") and value > limit:
            failures.append(f"{key} {value:.3f} is above {option} {limit:.3f}")
    return failures, notes


def cli_eval(args: argparse.Namespace) -> int:
    from .pipeline import QABot
    from .settings import Settings

    load_questions(args.questions)  # fail fast on a bad file, before loading any model
    resume = getattr(args, "resume", False)
    if resume and not args.out:
        raise QuestionFileError("--resume continues the run in --out DIR: name the folder of the stopped run")
    out = Path(args.out) if args.out else Path("eval") / "runs" / time.strftime("%Y%m%d-%H%M%S")
    bot = QABot(corpus_dir=args.corpus)
    try:
        settings = getattr(bot, "settings", None)  # the bot's own corpus, so evidence offsets match its chunks
        corpus_dir = settings.corpus_dir if settings else Path(args.corpus or Settings.from_env().corpus_dir)
        metrics = run_eval(args.questions, bot=bot, corpus_dir=corpus_dir, out_dir=out, resume=resume)
    finally:
        bot.close()
    print(headline(metrics))
    print(f"wrote {out}/ (predictions.jsonl, metrics.json, report.md)")
    failures, notes = check_thresholds(metrics, args)
    for n in notes:
        print(f"note: {n}")
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0
