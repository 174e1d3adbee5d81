"""The documentation site (mkdocs.yml) builds with `mkdocs build --strict`: every page of the nav exists, every
page of docs/ is in the nav, and every relative link and heading anchor resolves (scripts/mkdocs_repo.py lays the
site out like the repository, so these are the links a reader of the repository follows)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]' (scripts/setup.sh --test does)")
pytest.importorskip("material", reason="mkdocs-material is not installed: pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parent.parent
# What the site is built from: the config, its hook, and the Markdown it lays out.
SOURCES = ["mkdocs.yml", "scripts/mkdocs_repo.py", "README.md", "CHANGELOG.md", "docs", "eval/README.md",
           "eval/journal", "benchmarks/README.md"]


def build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # NO_MKDOCS_2_WARNING: mkdocs-material's notice about MkDocs 2.0, printed on every build, is not a finding.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(root / "mkdocs.yml"), "--site-dir", str(site)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_site_builds_strict_with_the_readme_as_home(tmp_path):
    site = tmp_path / "site"
    run = build(ROOT, site)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}{run.stderr}"
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "The two commands" in home  # the README's own heading
    for page in ["docs/install", "docs/architecture", "docs/settings", "eval", "eval/journal", "benchmarks",
                 "CHANGELOG"]:
        assert (site / page / "index.html").is_file(), page
    assert (site / "docs" / "chat_answer.png").is_file()  # the README's screenshot
    # eval/journal/ has no index of its own: the hook lists its entries, each a page of the site
    journal = (site / "eval" / "journal" / "index.html").read_text(encoding="utf-8")
    entries = sorted((ROOT / "eval" / "journal").glob("*.md"))
    assert entries and all(f'href="{e.stem}/"' in journal for e in entries)


def test_a_broken_link_a_missing_anchor_and_a_page_left_out_of_the_nav_fail_the_build(tmp_path):
    root = tmp_path / "repo"
    for name in SOURCES:
        src, dst = ROOT / name, root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    with (root / "docs" / "install.md").open("a", encoding="utf-8") as f:
        f.write("\n[gone](../eval/nothing.md) [anchor](architecture.md#no-such-heading) [folder](../eval/journal/)\n")
    (root / "docs" / "unlisted.md").write_text("# Not in the nav\n", encoding="utf-8")
    run = build(root, tmp_path / "site")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "'../eval/nothing.md'" in out
    assert "does not contain an anchor '#no-such-heading'" in out
    assert "docs/unlisted.md" in out
    assert "eval/journal" not in out  # a link to a folder resolves to its index page
