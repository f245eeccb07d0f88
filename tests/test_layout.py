"""The shape of the code: no private name imported across modules, no import circle, layers kept apart.

Read from the source with ``ast`` (every import, the ones inside functions too), so a lazy import cannot hide
a circle or a private reach into another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workbench", "widgets")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(mod: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every ``from X import names`` / ``import X`` in the file."""
    is_pkg = path.name == "__init__.py"
    out = []
    for n in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(n, ast.ImportFrom):
            if n.level:
                base = mod.split(".")
                base = base[: len(base) - n.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([n.module] if n.module else []))
            else:
                target = n.module or ""
            out.append((n.lineno, target, [a.name for a in n.names]))
        elif isinstance(n, ast.Import):
            out += [(n.lineno, a.name, []) for a in n.names]
    return out


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for mod, path in MODULES.items():
        for line, target, names in _imports(mod, path):
            if target.split(".")[0] not in PACKAGES or target == mod:
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: from {target} import {name}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for _, target, names in _imports(mod, path):
            for t in (target, *(f"{target}.{n}" for n in names)):
                if t in MODULES and t != mod:
                    edges[mod].add(t)
    return edges


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_circle():
    circles = _circles(_graph())
    assert not circles, "modules that import each other in a loop: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("workbench")))
def test_the_library_never_imports_the_panels_or_ipython(module):
    for line, target, _ in _imports(module, MODULES[module]):
        assert target.split(".")[0] not in ("widgets", "ipywidgets", "IPython"), f"{module}:{line} imports {target}"
