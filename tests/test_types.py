"""`mypy qa_bot` finds nothing, with the configuration in pyproject.toml ([tool.mypy]).

mypy keeps its cache in test-output/mypy-cache: a warm run re-checks only the modules that changed and takes
seconds; the first run on a machine also reads the installed libraries' types and takes a minute or more.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mypy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """mypy from the environment running the tests (the test extra installs it)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed: bash scripts/setup.sh --test (or pip install 'qa_bot[test]')")
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_mypy_finds_nothing_in_the_library():
    r = _mypy("qa_bot")
    assert r.returncode == 0, f"mypy qa_bot:\n{r.stdout}{r.stderr}"


def test_mypy_reports_a_finding(tmp_path):
    """The check can fail: a str passed where the signature says int is reported under the same configuration."""
    bad = tmp_path / "bad.py"
    bad.write_text("def twice(n: int) -> int:\n    return 2 * n\n\n\ntwice('2')\n", encoding="utf-8")
    r = _mypy("--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"), str(bad),
              cwd=tmp_path)
    assert r.returncode == 1 and "[arg-type]" in r.stdout, r.stdout + r.stderr
