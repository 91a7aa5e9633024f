"""`reactive-store codegen`: generated client code for a loaded app, and where it goes.

`codegen_ts` writes what `npx convex codegen` writes for a Convex app (`api.d.ts`, `api.js`,
`dataModel.d.ts`: the `api` and `internal` objects typed as the official client's
`FunctionReference`s, `Doc<"table">`, `Id<"table">`); `codegen_py` writes `api.py`, typed
references for `reactive_store.client`. Files are only rewritten when their text changes,
so watchers and build tools see no change when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reactive_store.app.codegen_model import AppModel, app_model
from reactive_store.app.codegen_py import python_files
from reactive_store.app.codegen_ts import typescript_files
from reactive_store.app.loader import App, AppLoadError, load_app, unload_app
from reactive_store.schema import TableDefinition

GENERATED_DIR = Path("functions") / "_generated"
"""Where generated files go inside an app folder (the loader skips `_` folders)."""


PLACEHOLDER = '''"""Untyped references until `reactive-store codegen --python` writes typed ones."""

from reactive_store.client import AnyApi

api = AnyApi()
internal = AnyApi()
'''


def write_placeholder(root: Path, exc: AppLoadError) -> bool:
    """When `exc` is an app module importing the generated references before they were
    ever generated, write an untyped placeholder `api.py` and return True: load again, and
    the real file replaces it once the app has loaded."""
    placeholder = Path(root) / GENERATED_DIR / "api.py"
    if f"{GENERATED_DIR.name}'" not in exc.message or placeholder.exists():
        return False
    placeholder.parent.mkdir(parents=True, exist_ok=True)
    placeholder.write_text(PLACEHOLDER)
    return True


def load_for_codegen(root: Path) -> App:
    """Load the app at `root`, through the placeholder when it needs one."""
    try:
        return load_app(root)
    except AppLoadError as exc:
        if not write_placeholder(root, exc):
            raise
    return load_app(root)


def generate_for(root: Path, python: bool,
                 system_tables: Mapping[str, TableDefinition] | None = None) -> dict[str, str]:
    """Load the app at `root` (see `load_for_codegen`) and generate its files."""
    app = load_for_codegen(root)
    try:
        return generate(app_model(app.functions, app.schema, system_tables), python)
    finally:
        unload_app(app)


def generate(model: AppModel, python: bool) -> dict[str, str]:
    """The generated files, by name: TypeScript, or with `python` the Python module."""
    return python_files(model) if python else typescript_files(model)


def write_files(out: Path, files: Mapping[str, str]) -> list[str]:
    """Write `files` into `out`; return the names whose text changed."""
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        path = out / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


def stale_files(out: Path, files: Mapping[str, str]) -> list[str]:
    """The names of `files` missing from `out` or different there (`codegen --check`)."""
    return [name for name, text in files.items()
            if not (out / name).is_file() or (out / name).read_text() != text]

