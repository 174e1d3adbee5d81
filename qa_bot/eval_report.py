"""Eval output: report.md, the terminal headline, and metrics.json's record of the run (what was run, on what,
when, with which settings and model; the chat's feedback counts beside it).

metrics["run"]: what was run, on what, when. questions (absolute path) and questions_sha256; corpus (absolute path);
  settings: dataclasses.asdict(bot.settings) with paths as strings (None when the bot has no settings
  dataclass); model: bot.model_info() called after the warm-up (None when the bot has no model_info, {"error": ...}
  when it fails); from both, every entry whose name contains "key" is dropped. started_at / finished_at (local
  time, ISO 8601), wall_s, python, platform, cpu_count, and loadavg_start / loadavg_end (os.getloadavg(): the 1-,
  5- and 15-minute load averages; None where unsupported) so timings can be read beside the machine's load.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADLINE = [  # (metrics key, label, format of a float)
    ("answer_accuracy", "Answer accuracy", ".3f"),
    ("token_f1", "Token F1 (answerable)", ".3f"),
    ("token_f1_all", "Token F1 (all, SQuAD 2.0)", ".3f"),
    ("answer_words_median", "Answer length (median words)", "g"),  # 12.0 -> "12", 12.5 -> "12.5"
    ("verbatim_quote_share", "Verbatim-quote answers (share)", ".3f"),
    ("recall@1", "Retrieval recall@1", ".3f"),
    ("recall@3", "Retrieval recall@3", ".3f"),
    ("recall@5", "Retrieval recall@5", ".3f"),
    ("mrr", "Retrieval MRR", ".3f"),
    ("refusal_recall", "Refusal recall (unanswerable)", ".3f"),
    ("false_refusal_rate", "False-refusal rate (answerable)", ".3f"),
    ("abstention_macro_f1", "Abstention macro-F1", ".3f"),
    ("citation_precision", "Citation precision", ".3f"),
    ("citation_recall", "Citation recall", ".3f"),
    ("unsupported_numbers", "Unsupported numbers (count)", ".3f"),
    ("latency_p50_s", "Latency p50 (s)", ".3f"),
    ("latency_p95_s", "Latency p95 (s)", ".3f"),
]


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "n/a"
    return format(v, spec) if isinstance(v, float) else str(v)


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


def _evidence_note(m: dict[str, Any]) -> str:
    return (f"evidence given for {m['n_with_evidence']} answerable, not found in the corpus for "
            f"{m['evidence_not_found']}, so retrieval and citations scored over {m['n_retrieval_scored']}")


def _run_note(run: dict[str, Any]) -> str:
    model = run.get("model")
    model = ", ".join(f"{k} {v}" for k, v in model.items()) if isinstance(model, dict) else "not reported"
    load = " → ".join(str(x[0]) if x else "n/a" for x in (run.get("loadavg_start"), run.get("loadavg_end")))
    return (f"Run {run.get('started_at')} ({run.get('wall_s')} s), Python {run.get('python')}, "
            f"{run.get('cpu_count')} CPUs, 1-minute load {load}. Model: {model}. Settings and paths: metrics.json.")


def render_report(records: list[dict[str, Any]], metrics: dict[str, Any], title: str = "Evaluation") -> str:
    m = metrics
    lines = [f"# {title}", "",
             f"{m['n_questions']} questions: {m['n_answerable']} answerable, {m['n_unanswerable']} unanswerable; "
             f"{_evidence_note(m)}; errors: {m['n_errors']}.", ""]
    if m.get("run"):
        lines += [_run_note(m["run"]), ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {label} | {_fmt(m[key], spec)} |" for key, label, spec in HEADLINE]
    for stage, p in m["stage_latency"].items():
        lines.append(f"| Stage {stage} p50 / p95 (s) | {_fmt(p['p50_s'])} / {_fmt(p['p95_s'])} |")
    if fb := m.get("user_feedback"):  # the chat users' votes, all time (not this run's questions)
        value = fb["error"] if "error" in fb else (f"{fb['up']} up / {fb['down']} down of {fb['n']}"
                                                   f" ({fb['with_comment']} with a comment)")
        lines.append(f"| Chat feedback (all time) | {value} |")

    def section(name: str, rows: list[dict[str, Any]]) -> None:
        lines.extend(["", f"## {name} ({len(rows)})", ""])
        if not rows:
            lines.append("None.")
        for r in rows:
            lines.append(f"### {r['id']}: {_one_line(r['question'])}")
            lines.append("")
            lines.append(f"- Answer: {_one_line(r['answer']) or '(empty)'}"
                         + (f" (error: {_one_line(r['error'])})" if r["error"] else ""))
            lines.append(f"- Gold: {', '.join(r['gold_answers']) or '(unanswerable)'}")
            if r["answerable"]:
                lines.append(f"- Token F1: {r['f1']:.3f}")
            if r["evidence"]:
                where = (f"{r['evidence_span']['source']} [{r['evidence_span']['start']}:{r['evidence_span']['end']}]"
                         if r["evidence_span"] else "not found in corpus")
                lines.append(f"- Evidence ({where}): {_one_line(r['evidence'])}")
            if r["unsupported_numbers"]:
                lines.append(f"- Unsupported numbers: {', '.join(r['unsupported_numbers'])}")
            lines.append("- Cited passages:" if r["citations"] else "- Cited passages: none")
            for c in r["citations"]:
                mark = " (overlaps evidence)" if c["n"] in r["relevant_citations"] else ""
                lines.append(f"  - [{c['n']}] {c['source']} [{c['start']}:{c['end']}]{mark}: {_one_line(c['text'])}")
            lines.append("")

    section("Wrong answers", [r for r in records if r["answerable"] and not r["abstained"] and not r["correct"]])
    section("False refusals", [r for r in records if r["answerable"] and r["abstained"]])
    section("Missed refusals", [r for r in records if not r["answerable"] and not r["abstained"]])
    return "\n".join(lines).rstrip() + "\n"


def headline(metrics: dict[str, Any]) -> str:
    m = metrics
    lines = [f"{m['n_questions']} questions ({m['n_answerable']} answerable, {m['n_unanswerable']} unanswerable; "
             f"{_evidence_note(m)}; errors: {m['n_errors']})"]
    lines += [f"  {label:<34} {_fmt(m[key], spec)}" for key, label, spec in HEADLINE]
    return "\n".join(lines)


def write_report(out: Path, records: list[dict[str, Any]], metrics: dict[str, Any], questions_path: str | Path) -> None:
    """metrics.json and report.md into the folder `out`."""
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_report(records, metrics, f"Evaluation of {Path(questions_path).name}"),
                                   encoding="utf-8")


# ---------------------------------------------------------------- the record of the run


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy: paths as strings, tuples and sets as lists, other objects as str; entries of a mapping
    whose name contains "key" (any case) are dropped, so no API key or key variable reaches metrics.json."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if "key" not in str(k).lower()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # PurePath and anything else


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on Windows
        return None


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def describe_bot(bot: Any) -> dict[str, Any]:
    """{"settings": dataclasses.asdict(bot.settings) or None, "model": bot.model_info() or None}, JSON-ready
    (see _jsonable: nothing whose name contains "key"). A model_info() that fails is recorded as {"error": ...}."""
    settings = getattr(bot, "settings", None)
    model = None
    if callable(getattr(bot, "model_info", None)):
        try:
            model = bot.model_info()
        except Exception as exc:  # metadata: must not lose the run
            model = {"error": f"{type(exc).__name__}: {exc}"}
    return {"settings": _jsonable(dataclasses.asdict(settings))
            if dataclasses.is_dataclass(settings) and not isinstance(settings, type) else None, "model": _jsonable(model)}


def feedback_summary(bot: Any) -> dict[str, Any] | None:
    """The chat's thumbs up/down counts (qa_bot.feedback) from the bot's Settings.feedback_db, beside the eval's
    own figures; None when the bot has no settings, {"error": ...} when the database cannot be read."""
    from .feedback import FeedbackError, FeedbackStore

    path = getattr(getattr(bot, "settings", None), "feedback_db", None)
    if path is None:
        return None
    try:
        return {**FeedbackStore(path).summary(), "db": str(path)}
    except FeedbackError as exc:
        return {"error": str(exc), "db": str(path)}


@dataclass(frozen=True)
class RunStart:
    """When, and under what load, a run began: what run_info measures the run's end against."""

    started_at: str
    loadavg: list[float] | None
    clock: float  # time.perf_counter()

    @classmethod
    def now(cls) -> RunStart:
        return cls(_now(), _loadavg(), time.perf_counter())


def run_info(start: RunStart, questions_path: str | Path, corpus_dir: str | Path, bot_info: dict[str, Any],
             resumed_with: int) -> dict[str, Any]:
    """metrics["run"] (the module docstring), at the end of a run that began at `start`; bot_info: describe_bot."""
    return {
        "questions": str(Path(questions_path).resolve()),
        "questions_sha256": hashlib.sha256(Path(questions_path).read_bytes()).hexdigest(),
        "corpus": str(Path(corpus_dir).resolve()),
        **bot_info,
        "started_at": start.started_at, "finished_at": _now(), "wall_s": round(time.perf_counter() - start.clock, 3),
        "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "loadavg_start": start.loadavg, "loadavg_end": _loadavg(), "resumed_with": resumed_with,
    }
