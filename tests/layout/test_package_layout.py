"""The package's layout holds: imports point down the documented order, never sideways into
private names, the sans-IO protocol core imports no I/O, and no module imports in a cycle.

docs/architecture.md ("Dependency order") is the prose form of `ORDER`; runtime and
`TYPE_CHECKING` imports, at module level or inside functions, all count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "reactive_store"

# Lowest first: a unit may import only units at or before its own position.
ORDER = [
    "types", "errors", "limits", "values", "ids", "keys", "validators", "annotations", "schema",
    "failures", "auth", "access", "observe",
    "storage", "app", "engine", "live", "jobs", "sync", "client",
    "deployment", "snapshot", "admin", "dashboard", "dev", "server", "cli",
]
FACADES = {"reactive_store", "reactive_store.__main__"}  # the public API and `python -m`
CORE = set(ORDER[: ORDER.index("storage")])
SANS_IO = {"reactive_store.sync.protocol", "reactive_store.sync.session",
           "reactive_store.sync.shared_encodings"}
IO_LIBRARIES = {"asyncio", "asyncpg", "starlette", "uvicorn", "websockets", "httpx", "socket"}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """`reactive_store.engine.db` -> "engine"; `reactive_store.values` -> "values"."""
    return module.split(".")[1]


def imports_of(path: Path, src: Path = SRC) -> list[tuple[int, str, list[str]]]:
    """Every import in the file: (line, absolute module, imported names)."""
    found = []
    package = module_name(path, src)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [alias.name for alias in node.names]
            modules = [n for n in names if (src.parent / base.replace(".", "/") / f"{n}.py")
                       .exists() or (src.parent / base.replace(".", "/") / n).is_dir()]
            found.append((node.lineno, base, [n for n in names if n not in modules]))
            found += [(node.lineno, f"{base}.{n}", []) for n in modules]
    return found


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def test_every_unit_is_in_the_order() -> None:
    units = {unit_of(m) for m in MODULES if m not in FACADES}
    assert units == set(ORDER), "add new modules or packages to ORDER and the docs"


@pytest.mark.parametrize("module", sorted(set(MODULES) - FACADES))
def test_imports_point_down(module: str) -> None:
    mine = ORDER.index(unit_of(module))
    wrong = []
    for line, target, names in imports_of(MODULES[module]):
        if target.startswith("reactive_store.") and target not in FACADES:
            theirs = ORDER.index(unit_of(target))
            if theirs > mine:
                wrong.append(f"line {line}: {target} ({ORDER[theirs]} is above {ORDER[mine]})")
        elif target == "reactive_store" and names:
            wrong.append(f"line {line}: imports {names} from the public facade")
    assert not wrong, "\n".join(wrong)


def private_uses(source: str) -> list[str]:
    """Private names of other modules that `source` reaches for (its own are fine)."""
    tree = ast.parse(source)
    own = {n.name for n in ast.walk(tree)
           if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                own |= {t.attr} if isinstance(t, ast.Attribute) else set()
                own |= {t.id} if isinstance(t, ast.Name) else set()
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reactive_store"):
            wrong += [f"line {node.lineno}: imports {a.name} from {node.module}"
                      for a in node.names if a.name.startswith("_")
                      and not a.name.startswith("__")]
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and node.attr not in own
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            wrong.append(f"line {node.lineno}: uses private .{node.attr} of another module")
    return wrong


@pytest.mark.parametrize("module", sorted(set(MODULES) - FACADES))
def test_no_private_names_of_other_modules(module: str) -> None:
    """`from x import _name` and `obj._name` only for names this module defines itself."""
    wrong = private_uses(MODULES[module].read_text())
    assert not wrong, "\n".join(wrong)


def test_private_uses_are_found() -> None:
    source = ("from reactive_store.validators import _Hidden\nclass A:\n    def _mine(self): "
              "pass\ndef f(db, a):\n    db._insert(1)\n    a._mine()\n    self._ok\n")
    assert private_uses(source) == ["line 1: imports _Hidden from reactive_store.validators",
                                    "line 5: uses private ._insert of another module"]


@pytest.mark.parametrize("module", sorted(SANS_IO))
def test_the_protocol_core_does_no_io(module: str) -> None:
    for line, target, _ in imports_of(MODULES[module]):
        assert target.split(".")[0] not in IO_LIBRARIES, f"line {line}: imports {target}"
        if target.startswith("reactive_store."):
            assert target in SANS_IO or unit_of(target) in CORE, f"line {line}: {target}"


def test_no_import_cycles() -> None:
    graph = {m: {t for _, t, _ in imports_of(p) if t in MODULES and t not in FACADES and t != m}
             for m, p in MODULES.items() if m not in FACADES}
    # Importing a submodule runs its package's __init__ first; that edge is not a cycle.
    graph = {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = [*trail[trail.index(target):], target] if target in trail else [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_parser_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: relative, TYPE_CHECKING and in-function imports are all seen."""
    src = tmp_path / "reactive_store"
    (src / "engine").mkdir(parents=True)
    (src / "engine" / "db.py").write_text("")
    (src / "values.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import db\n"
        "def f():\n    from reactive_store.engine.db import Reader\n    import asyncio\n")
    found = {t for _, t, _ in imports_of(src / "values.py", src)}
    assert {"reactive_store.engine.db", "reactive_store.engine", "asyncio"} <= found


LONG_FUNCTION_LINES = 60


@pytest.mark.parametrize("module", sorted(MODULES))
def test_functions_are_short(module: str) -> None:
    """No function over 60 lines unless a comment in it says why it must be one piece."""
    source = MODULES[module].read_text()
    lines = source.splitlines()
    long = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            body = lines[node.lineno - 1: node.end_lineno]
            if len(body) > LONG_FUNCTION_LINES and not any("one piece" in b for b in body):
                long.append(f"{node.name} (line {node.lineno}): {len(body)} lines")
    assert not long, "\n".join(long)
