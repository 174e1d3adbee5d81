"""The shape of the library (issue 42): stages depend one way (no import circle, lazy imports included), the
orchestrator stays small, and no module grows past one screenful of jobs."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qa_bot"
MAX_MODULE_LINES = 500
MAX_QABOT_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The qa_bot modules `path` imports anywhere in it (inside functions too: a lazy import is a dependency)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for a in node.names:  # `from . import cite` names a module; `from .errors import X` names its module
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return {m for m in out if m in modules and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_modules_import_each_other_one_way_only():
    modules = _modules()
    # The package's own __init__ re-exports (lazily) the public names: importing `qa_bot` from inside is not a stage
    # depending on another, so the edges into it are left out.
    graph = {m: imports(p, modules) - {"qa_bot"} for m, p in modules.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle_through_a_lazy_import(tmp_path):
    pkg = tmp_path / "qa_bot"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "c.py").write_text("from . import a\n")
    mods = {"qa_bot.a": pkg / "a.py", "qa_bot.b": pkg / "b.py", "qa_bot.c": pkg / "c.py"}
    global PACKAGE
    saved, PACKAGE = PACKAGE, pkg
    try:
        graph = {m: imports(p, mods) for m, p in mods.items()}
    finally:
        PACKAGE = saved
    assert graph == {"qa_bot.a": {"qa_bot.b"}, "qa_bot.b": {"qa_bot.a"}, "qa_bot.c": {"qa_bot.a"}}
    assert cycles(graph) == [["qa_bot.a", "qa_bot.b"]]


def test_no_module_is_longer_than_a_few_screens():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_the_orchestrator_is_small():
    tree = ast.parse((PACKAGE / "pipeline.py").read_text(encoding="utf-8"))
    qabot = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "QABot")
    assert qabot.end_lineno - qabot.lineno + 1 <= MAX_QABOT_LINES
