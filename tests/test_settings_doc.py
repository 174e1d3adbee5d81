"""docs/settings.md is what scripts/settings_doc.py writes from qa_bot/settings.py (fast, pure)."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from qa_bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("settings_doc", ROOT / "scripts" / "settings_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_settings_reference_is_the_scripts_output():
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == _script().render(), (
        "docs/settings.md is out of date: run python scripts/settings_doc.py")


def test_every_field_has_its_row_and_environment_variable():
    text = _script().render()
    for f in dataclasses.fields(Settings):
        assert f"| `{f.name}` | `QA_BOT_{f.name.upper()}` |" in text


def test_defaults_do_not_depend_on_the_machine():
    text = _script().render()
    assert str(Path.home()) not in text and str(ROOT) not in text


def test_a_fields_comments_are_collected():
    source = 'class Settings:\n    # first line\n    # second line\n    a: int = 1  # inline\n\n    b: int = 2\n'
    assert _script().field_comments(source) == {"a": "first line second line inline", "b": ""}
