"""CI's regression gate: the evaluation command on the dev set with the default reader (Qwen2.5-Coder-1.5B),
with thresholds a little under the measured figures (2026-11-26, new reader: accuracy about 0.95, refusal
recall 1.0 = 3/3, token F1 about 0.8, citation precision 1.0): accuracy 0.90, refusal recall 0.66 (one missed
refusal), citation precision 0.90, token F1 0.5."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_dev_set_meets_the_gate(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "qa_bot.cli", "eval", str(ROOT / "eval" / "article_qa.jsonl"), "--out", str(out),
           "--min-accuracy", "0.90", "--min-abstention", "0.66", "--min-citation-precision", "0.90",
           "--min-token-f1", "0.5"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900,
                       env={**os.environ, "QA_BOT_CACHE_DIR": str(tmp_path / "cache")})
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unsupported_numbers"] == 0
    assert metrics["answer_accuracy"] >= 0.90 and metrics["token_f1"] >= 0.5 and metrics["refusal_recall"] >= 0.66
    assert metrics["answer_words_median"] is not None and metrics["answer_words_median"] <= 5  # short answers
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 24
    for row in rows:  # every citation is an exact span of the article
        for c in row["citations"]:
            assert (ROOT / "docs_corpus" / c["source"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["text"]
    # the printed headline carries the same figure as metrics.json, and no threshold failed
    assert re.search(rf"^  Answer accuracy +{metrics['answer_accuracy']:.3f}$", r.stdout, re.M)
    assert "FAIL:" not in r.stdout


def test_eval_works_on_another_corpus_and_question_file(tmp_path):
    """Any corpus folder and any question file in the format: two short articles written for this test."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "qa_bot.cli", "eval", str(ROOT / "eval" / "sample_qa.jsonl"),
           "--corpus", str(ROOT / "eval" / "sample_corpus"), "--out", str(out), "--min-abstention", "0.5"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env={**os.environ, "QA_BOT_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stdout + r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_questions"] == 7 and metrics["evidence_not_found"] == 0
    assert metrics["recall@3"] >= 0.8
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    sources = {c["source"] for row in rows for c in row["citations"]}
    assert sources <= {"harbour_ferries.txt", "library_reopens.md"} and sources
