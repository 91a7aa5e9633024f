"""Load an app folder: `schema/` (a `schema` object) and every module under `functions/`."""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reactive_store.app.crons import Crons
from reactive_store.app.http_router import HttpRouter
from reactive_store.app.registry import FunctionSpec, Registry
from reactive_store.auth import parse_providers
from reactive_store.errors import AnnotationError, ReactiveStoreError
from reactive_store.schema import Schema, define_schema

_counter = itertools.count()


class AppLoadError(ReactiveStoreError):
    """The app could not be loaded: which file and line (when known), and what was wrong.

    `message` is the bare error; `str()` of the exception is `file:line: message`.
    """

    code = "AppLoadError"

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        located = message if file is None else f"{file}:{line or 1}: {message}"
        super().__init__(located)
        self.message = message
        self.file = file
        self.line = None if file is None else (line or 1)


@dataclass
class App:
    """A loaded app: its folder, schema, function registry, crons and HTTP routes."""

    root: Path
    schema: Schema
    functions: Registry
    package: str
    crons: Crons | None = None
    http: HttpRouter | None = None
    auth_providers: list[Any] | None = None


def _package(root: Path) -> str:
    # Each load gets a fresh package name, so two apps (or two versions of one app) in a
    # process never share modules; relative imports inside the app work as usual.
    name = f"_reactive_store_app_{next(_counter)}"
    module = types.ModuleType(name)
    module.__path__ = [str(root)]
    module.__package__ = name
    sys.modules[name] = module
    return name


def _import(name: str, root: Path) -> types.ModuleType:
    # No bytecode cache for app modules: Python validates a .pyc by the source's mtime in
    # whole seconds and its size, so an edit within the same second that keeps the size
    # (`return 1` -> `return 2`) would load stale code on hot reload.
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        return importlib.import_module(name)
    except SyntaxError as exc:
        raise AppLoadError(f"syntax error: {exc.msg}", exc.filename or name,
                           exc.lineno) from exc
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename.startswith(str(root))]
        file, line = (frames[-1].filename, frames[-1].lineno) if frames else (name, None)
        raise AppLoadError(f"{type(exc).__name__}: {exc}", file, line) from exc
    finally:
        sys.dont_write_bytecode = previous


def module_path(functions_dir: Path, file: Path) -> str:
    """`functions/dir/chatSessions.py` -> `dir/chatSessions`."""
    return file.relative_to(functions_dir).with_suffix("").as_posix()


def load_app(root: Path | str) -> App:
    """Import the app at `root`; raise AppLoadError naming the first broken file."""
    return load_into(Path(root), None)


def load_into(root: Path, package: str | None) -> App:
    """Import the app at `root` into `package` (a fresh one when None). Modules already in
    sys.modules under that package are reused as they are (see reloader.py)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise AppLoadError(f"app folder {root} does not exist")
    package = package or _package(root)
    importlib.invalidate_caches()
    schema = define_schema({})
    if (root / "schema").is_dir() or (root / "schema.py").is_file():
        module = _import(f"{package}.schema", root)
        found = getattr(module, "schema", None)
        if not isinstance(found, Schema):
            raise AppLoadError("expected a variable `schema = define_schema({...})`",
                               str(root / "schema"))
        schema = found
    registry = Registry()
    crons: Crons | None = None
    http: HttpRouter | None = None
    auth_providers: list[Any] | None = None
    functions_dir = root / "functions"
    if functions_dir.is_dir():
        for file in sorted(functions_dir.rglob("*.py")):
            rel = file.relative_to(functions_dir)
            if any(part.startswith(("_", ".")) for part in rel.parts):
                continue
            dotted = ".".join(rel.with_suffix("").parts)
            module = _import(f"{package}.functions.{dotted}", root)
            name = module_path(functions_dir, file)
            if name == "crons" and isinstance(getattr(module, "crons", None), Crons):
                crons = module.crons
            if name == "http" and isinstance(getattr(module, "http", None), HttpRouter):
                http = module.http
            if name == "auth_config":
                providers = getattr(module, "providers", None)
                try:
                    parse_providers(providers)
                except ValueError as exc:
                    raise AppLoadError(str(exc), str(file), 1) from None
                auth_providers = providers
            register_module(registry, module, module_path(functions_dir, file), schema)
    return App(root, schema, registry, package, crons, http, auth_providers)


def register_module(registry: Registry, module: types.ModuleType, name: str,
                    schema: Schema) -> None:
    """Register the functions a module defines, under their exported names.

    A function is exported under its attribute name, or the `name=` it was given (then also
    from a `_private` attribute); its type hints are mapped now, when every class the module
    defines exists, and an AnnotationError becomes an AppLoadError at the function's line.
    """
    for attr, value in vars(module).items():
        if not isinstance(value, FunctionSpec) or (attr.startswith("_") and value.name is None):
            continue
        if getattr(value.handler, "__module__", None) != module.__name__:
            continue  # imported from another module: registered under that one
        _compile(value)
        path = f"{name}:{value.name or attr}"
        existing = registry.get(path)
        if existing is not None and existing is not value:
            raise AppLoadError(f"two functions are exported as {path!r}: "
                               f"{existing.label} and {value.label}", *_location(value))
        _check_documents(value, schema)
        registry.add(path, value)


def _location(spec: FunctionSpec) -> tuple[str | None, int | None]:
    code = getattr(spec.handler, "__code__", None)
    if code is None:
        return None, None
    return code.co_filename, code.co_firstlineno


def _compile(spec: FunctionSpec) -> None:
    try:
        spec.compile()
    except AnnotationError as exc:
        raise AppLoadError(f"AnnotationError: {exc.message}", *_location(spec)) from None


def _check_documents(spec: FunctionSpec, schema: Schema) -> None:
    """Every `Doc["table"]` / `v.doc(table)` a function declares names a table of the schema."""
    described = spec.describe()
    for where in ("args", "returns"):
        for table in _doc_tables(described[where]):
            if table not in schema.tables and not table.startswith("_"):
                raise AppLoadError(f"{spec.label}: {where} use Doc[{table!r}], but the schema "
                                   f"has no table {table!r}", *_location(spec))


def _doc_tables(spec: Any) -> Iterator[str]:
    if isinstance(spec, dict):
        if spec.get("type") == "doc":
            yield spec["tableName"]
        for item in spec.values():
            yield from _doc_tables(item)
    elif isinstance(spec, list):
        for item in spec:
            yield from _doc_tables(item)


def unload_app(app: App) -> None:
    """Forget an app's modules (tests load many apps; hot reload replaces them)."""
    for name in [m for m in sys.modules if m == app.package or m.startswith(app.package + ".")]:
        del sys.modules[name]
