"""Every relative link in the user docs resolves to a file or folder in the repository (fast, pure)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# [text](target) and ![alt](target), outside code spans; the target ends at white space or ")"
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "eval" / "README.md",
            *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "eval" / "journal").glob("*.md"))]


def relative_links(text: str) -> list[str]:
    """The link targets that point into the repository (not URLs, not in-page anchors), code removed."""
    out = []
    for target in LINK.findall(CODE.sub("", text)):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def broken_links(doc: Path) -> list[str]:
    return [t for t in relative_links(doc.read_text(encoding="utf-8")) if not (doc.parent / t).exists()]


def test_the_link_finder_sees_links_and_skips_urls_and_code():
    text = "[a](docs/x.md) ![i](pic.png#x) [u](https://e.org) [h](#top) `[c](not/a/link)`\n```\n[d](nor.md)\n```"
    assert relative_links(text) == ["docs/x.md", "pic.png"]


def test_a_missing_target_is_reported(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("[ok](a.md) [gone](missing.md)", encoding="utf-8")
    assert broken_links(doc) == ["missing.md"]


def test_every_relative_link_resolves():
    docs = [d for d in documents() if d.exists()]
    assert ROOT / "README.md" in docs and len(docs) > 5
    broken = {str(d.relative_to(ROOT)): b for d in docs if (b := broken_links(d))}
    assert not broken, f"broken relative links: {broken}"
