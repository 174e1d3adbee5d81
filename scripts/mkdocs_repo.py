"""MkDocs hook (mkdocs.yml `hooks:`): the site keeps every page at its path in the repository.

The manual in docs/ links the README, the changelog and the eval notes by relative paths such as
`../eval/README.md`, and the README links `docs/install.md`: links written to be followed in the repository.
Rather than copy those files into docs/ or write each link twice, the site is laid out like the repository:
the README is the home page, `docs/install.md` is served at `docs/install/`, and every repository file that a
page links to (a Markdown page, an image, a folder) is brought in, following links from the pages it brings.
So `mkdocs build --strict` resolves exactly the links a reader of the repository follows, and fails on a link
that leads nowhere, a heading anchor that does not exist, or a page of docs/ left out of the nav.

A link to a folder is pointed at the folder's README.md or index.md; a folder with neither (eval/journal/) gets
a generated index page listing its Markdown files by their first heading.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

HOME = "README.md"
# A code block or span (left alone), or the opener of a Markdown link or image and its target.
LINK = re.compile(r"(?P<code>```.*?```|`[^`\n]*`)|(?P<open>!?\[[^\]\n]*\]\()(?P<target>[^)\s]+)", re.S)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
INDEX_NAMES = ("README.md", "index.md")

# Folder (repository path) -> the page a link to it opens. Filled by on_files, read by on_page_markdown.
_folder_pages: dict[str, str] = {}


def _resolve(page_uri: str, target: str) -> str | None:
    """The repository path a relative link target names, or None for a URL, an in-page or a root-absolute link."""
    path = target.split("#", 1)[0]
    if not path or SCHEME.match(target) or path.startswith("/"):
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(page_uri), path))


def _link_targets(markdown: str) -> list[str]:
    return [m["target"] for m in LINK.finditer(markdown) if m["target"]]


def _nav_paths(nav: object) -> set[str]:
    """Every page path named in the mkdocs.yml nav, at any depth."""
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_nav_paths(v) for v in nav.values()))
    if isinstance(nav, list):
        return set().union(*(_nav_paths(v) for v in nav))
    return set()


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def _folder_listing(root: Path, folder: str) -> str:
    lines = [f"# `{folder}/`", "", "The Markdown files of this folder of the repository:", ""]
    for md in sorted((root / folder).glob("*.md")):
        lines.append(f"- [{_title(md)}]({md.name})")
    return "\n".join(lines) + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).resolve().parent
    docs = Path(config.docs_dir).resolve()
    prefix = docs.relative_to(root).as_posix()
    in_nav = _nav_paths(config.nav)
    _folder_pages.clear()

    def repo_file(path: str, generated: str | None = None) -> File:
        level = InclusionLevel.UNDEFINED if path in in_nav or path.startswith(prefix + "/") else InclusionLevel.NOT_IN_NAV
        if generated is not None:
            return File.generated(config, path, content=generated, inclusion=level)
        return File(path, str(root), config.site_dir, config.use_directory_urls, inclusion=level)

    # docs/'s own files move under their repository path; the theme's files stay as they are.
    out: list[File] = []
    for f in files:
        if f.abs_src_path and Path(f.abs_src_path).resolve().is_relative_to(docs):
            out.append(repo_file(f"{prefix}/{f.src_uri}"))
        else:
            out.append(f)
    out.append(repo_file(HOME))

    # Bring in what the pages link to, and what those link to in turn.
    known = {f.src_uri for f in out}
    pages = [f.src_uri for f in out if f.src_uri.endswith(".md")]
    while pages:
        page = pages.pop()
        for target in _link_targets((root / page).read_text(encoding="utf-8")):
            path = _resolve(page, target)
            if path is None or path.startswith("..") or path in known or path in _folder_pages:
                continue  # outside the repository: left to mkdocs, which reports it
            if (root / path).is_dir():
                index = next((f"{path}/{n}" for n in INDEX_NAMES if (root / path / n).is_file()), None)
                if index is None:
                    index = f"{path}/index.md"
                    out.append(repo_file(index, generated=_folder_listing(root, path)))
                    known.add(index)
                    new = [f"{path}/{md.name}" for md in sorted((root / path).glob("*.md"))]
                else:
                    new = [index]
                _folder_pages[path] = index
            elif (root / path).is_file():
                new = [path]
            else:
                continue  # missing: mkdocs reports the link
            for p in new:
                if p not in known:
                    known.add(p)
                    out.append(repo_file(p))
                    if p.endswith(".md"):
                        pages.append(p)
    return Files(out)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """A link to a folder is pointed at the folder's page (mkdocs resolves links to files only)."""

    def point(m: re.Match[str]) -> str:
        if m["code"]:
            return m[0]
        target = m["target"]
        path = _resolve(page.file.src_uri, target)
        if path not in _folder_pages:
            return m[0]
        name = posixpath.basename(_folder_pages[path])
        head, sep, anchor = target.partition("#")
        return f"{m['open']}{head.rstrip('/')}/{name}{sep}{anchor}"

    return LINK.sub(point, markdown)
