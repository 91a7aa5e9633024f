"""Reloading an app in place: re-import only the modules that changed and those that
import them, into the same package, and put the last good modules back on failure."""

from __future__ import annotations

import ast
import hashlib
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from reactive_store.app.loader import App, AppLoadError, load_into
from reactive_store.storage import PushReport


@dataclass
class Reload:
    """What one reload changed, for the terminal line and the dev status endpoint."""

    changed: list[str] = field(default_factory=list)
    reimported: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    schema: PushReport | None = None  # set when the reload pushed a changed schema


def _sources(root: Path) -> dict[str, str]:
    """Content hash of every Python file of the app (schema and functions)."""
    out: dict[str, str] = {}
    for folder in ("schema", "functions"):
        base = root / folder
        files = sorted(base.rglob("*.py")) if base.is_dir() else []
        for file in files:
            out[file.relative_to(root).as_posix()] = hashlib.sha1(file.read_bytes()).hexdigest()
    if (root / "schema.py").is_file():
        out["schema.py"] = hashlib.sha1((root / "schema.py").read_bytes()).hexdigest()
    return out


def _module_name(package: str, rel: str) -> str:
    parts = Path(rel).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((package, *parts))


def _imports(module: str, source: str, package: str) -> set[str]:
    """The app modules `module` imports (absolute within the package, or relative)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    is_package = module.endswith(("schema", "functions"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, *([node.module] if node.module else [])])
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
            elif node.module and node.module.startswith(package):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(package))
    return found


class AppSource:
    """An app folder kept loaded in one package across reloads.

    `hashes` is the content of the files the current (last good) app was loaded from; it
    changes only when a reload succeeds.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.hashes: dict[str, str] = {}
        self.app: App | None = None
        self._undo: tuple[dict[str, types.ModuleType], set[str], dict[str, str], App | None] = (
            {}, set(), {}, None)

    def load(self) -> App:
        self.hashes = _sources(self.root)
        self.app = load_into(self.root, None)
        return self.app

    def accept(self, files: list[Path]) -> None:
        """Take the current content of `files` (generated code) as what the app was loaded
        from, so that a later reload does not report them as changed."""
        for file in files:
            rel = file.resolve().relative_to(self.root).as_posix()
            self.hashes[rel] = hashlib.sha1(file.read_bytes()).hexdigest()

    def changes(self) -> dict[str, str]:
        """Files whose content differs from the current app's (added, changed, removed)."""
        now = _sources(self.root)
        return {rel: h for rel, h in now.items() if self.hashes.get(rel) != h} | {
            rel: "" for rel in self.hashes if rel not in now
        }

    def reload(self) -> tuple[App, Reload]:
        """A new App with the changed modules and their importers re-imported.

        The current app keeps working throughout; on failure every module is put back and
        AppLoadError says which file broke.
        """
        assert self.app is not None, "load() first"
        package = self.app.package
        now = _sources(self.root)
        changed = {rel for rel in set(now) | set(self.hashes)
                   if now.get(rel) != self.hashes.get(rel)}
        stale = {_module_name(package, rel) for rel in changed}
        sources = {_module_name(package, rel): (self.root / rel).read_text()
                   for rel in now}
        importers: dict[str, set[str]] = {}
        for name, source in sources.items():
            for target in _imports(name, source, package):
                importers.setdefault(target, set()).add(name)
        frontier = list(stale)
        while frontier:
            for importer in importers.get(frontier.pop(), ()):
                if importer not in stale:
                    stale.add(importer)
                    frontier.append(importer)
        saved: dict[str, types.ModuleType] = {
            name: sys.modules.pop(name) for name in stale if name in sys.modules
        }
        _bind_parents(saved, None)
        try:
            app = load_into(self.root, package)
        except AppLoadError:
            self._restore(saved, stale)
            raise
        old_paths = {f.path for f in self.app.functions}
        new_paths = {f.path for f in app.functions}
        report = Reload(
            changed=sorted(changed),
            reimported=sorted(n.removeprefix(package + ".") for n in stale if n in sys.modules),
            added=sorted(p for p in new_paths - old_paths if p),
            removed=sorted(p for p in old_paths - new_paths if p),
        )
        self._undo = (saved, stale, self.hashes, self.app)
        self.hashes, self.app = now, app
        return app, report

    def revert(self, app: App) -> None:
        """Undo the last reload (its schema could not be pushed): `app` is current again."""
        saved, stale, hashes, previous = self._undo
        assert previous is app
        self._restore(saved, stale)
        self.hashes, self.app = hashes, previous

    @staticmethod
    def _restore(saved: dict[str, types.ModuleType], stale: set[str]) -> None:
        for name in stale:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
        _bind_parents(saved, saved)


def _bind_parents(modules: dict[str, types.ModuleType],
                  to: dict[str, types.ModuleType] | None) -> None:
    """Unbind (`to` None) or bind again each module as its parent package's attribute.

    `from . import api` takes a submodule from its package's attribute when it is there,
    without looking at sys.modules: a dropped module must leave that attribute too, or its
    importers would be handed the old module again.
    """
    for name, module in modules.items():
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if parent is None:
            continue
        if to is not None:
            setattr(parent, child, to[name])
        elif getattr(parent, child, None) is module:
            delattr(parent, child)
