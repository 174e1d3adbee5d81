"""The README's test command is exactly what .ci/run runs (fast, pure)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_test_command() -> str:
    """The command in the code block after "Set up and run the tests" in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"Set up and run the tests.*?```bash\n(.+?)\n```", text, re.S)
    assert m, "README.md has no 'Set up and run the tests' command block"
    return m.group(1).strip()


def test_the_readme_test_command_is_the_one_ci_runs():
    command = readme_test_command()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert command in ci_lines, f".ci/run does not run the README's test command verbatim: {command!r}"


def test_the_command_runs_more_than_the_fast_suite():
    """A plain pytest deselects slow, browser and soak (pyproject.toml); CI must select the slow and browser tests
    back, so its command names its own marker expression."""
    command = readme_test_command()
    assert "setup.sh --test" in command and '-m "not soak"' in command
