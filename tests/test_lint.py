"""`ruff check qa_bot` finds nothing, with the configuration in pyproject.toml (fast: about a second)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    """ruff from the environment running the tests (the test extra installs it), else from PATH."""
    here = Path(sys.executable).with_name("ruff")
    if here.exists():
        return [str(here)]
    found = shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: bash scripts/setup.sh --test (or pip install ruff)")
    return [found]


def test_ruff_finds_nothing_in_the_library():
    r = subprocess.run([*_ruff(), "check", "--no-cache", "qa_bot"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"ruff check qa_bot:\n{r.stdout}{r.stderr}"


def test_ruff_reports_a_finding(tmp_path):
    """The check can fail: an unused import in a file under the same configuration is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n", encoding="utf-8")
    r = subprocess.run([*_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "F401" in r.stdout
