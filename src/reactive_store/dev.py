"""`reactive-store dev`: watch the app's schema and functions and hot-reload them into the
running server, keeping the last good version serving when a change is broken, and keep the
typed client code in `functions/_generated/` in step with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchfiles import awatch

from reactive_store.app.codegen import GENERATED_DIR, generate, write_files
from reactive_store.app.codegen_model import app_model
from reactive_store.app.loader import AppLoadError
from reactive_store.deployment import Deployment
from reactive_store.engine.system_tables import readable_system_tables
from reactive_store.errors import ReactiveStoreError

log = logging.getLogger(__name__)


@dataclass
class DevStatus:
    """What /api/dev/status reports: the state of the code the server runs."""

    ok: bool = True
    error: dict[str, Any] | None = None
    reloads: int = 0
    last: dict[str, Any] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "reloads": self.reloads, "last": self.last}


def describe_error(exc: ReactiveStoreError, root: Path) -> dict[str, Any]:
    """File, line and message of a load or schema error, for the terminal and for tools."""
    if not isinstance(exc, AppLoadError) or exc.file is None:
        return {"file": None, "line": None, "message": exc.message, "kind": exc.code}
    file = exc.file
    with contextlib.suppress(ValueError):
        file = str(Path(file).resolve().relative_to(root))
    return {"file": file, "line": exc.line, "message": exc.message, "kind": exc.code}


class DevReloader:
    """Watches the app folder; every change becomes one reload and one terminal line."""

    def __init__(self, deployment: Deployment, echo: Callable[[str], None] = print,
                 codegen: bool = True) -> None:
        self.deployment = deployment
        self.root = deployment.settings.app_dir.resolve()
        self.status = DevStatus()
        self.codegen = codegen
        self._echo = echo
        self._stop = asyncio.Event()

    def _paths(self) -> list[Path]:
        found = [p for p in (self.root / "functions", self.root / "schema",
                             self.root / "schema.py") if p.exists()]
        return found or [self.root]

    @staticmethod
    def _interesting(change: Any, path: str) -> bool:
        return (path.endswith(".py") and "/.reactive-store/" not in path
                and f"/{GENERATED_DIR.name}/" not in path)

    def generate(self) -> list[str]:
        """Write the typed client code of the current app (TypeScript and Python) into
        functions/_generated/; return the files that changed."""
        if not self.codegen:
            return []
        app = self.deployment.app
        out = self.root / GENERATED_DIR
        try:
            model = app_model(app.functions, app.schema, readable_system_tables())
            changed = write_files(out, {**generate(model, python=False),
                                        **generate(model, python=True)})
        except (ReactiveStoreError, OSError) as exc:
            self._echo(f"codegen failed: {exc}")
            return []
        if not self._imports_generated():
            # No app module imports it: a later reload need not report it as changed.
            self.deployment.source.accept([out / n for n in changed if n.endswith(".py")])
        return changed

    def _imports_generated(self) -> bool:
        app = self.deployment.app
        return f"{app.package}.functions.{GENERATED_DIR.name}.api" in sys.modules

    async def run(self) -> None:
        if "api.py" in self.generate() and self._imports_generated():
            await self.reload()  # the app started on stale generated references
        while not self._stop.is_set():
            paths = self._paths()
            async for _ in awatch(*paths, watch_filter=self._interesting, debounce=30,
                                  step=10, stop_event=self._stop, recursive=True):
                await self.reload()
                if self._paths() != paths:
                    break  # a watched folder appeared: watch it too

    def stop(self) -> None:
        self._stop.set()

    async def reload(self) -> None:
        started = time.perf_counter()
        try:
            report = await self.deployment.reload()
        except ReactiveStoreError as exc:
            self.status.ok = False
            self.status.error = describe_error(exc, self.root)
            where = self.status.error
            place = f"{where['file']}:{where['line']}: " if where["file"] else ""
            self._echo(f"reload failed, still serving the last good version: "
                       f"{place}{where['message']}")
            return
        except Exception as exc:
            log.exception("reload failed")
            self.status.ok, self.status.error = False, {"file": None, "line": None,
                                                        "message": str(exc), "kind": "Error"}
            return
        elapsed = (time.perf_counter() - started) * 1000
        self.status.ok, self.status.error = True, None
        self.status.reloads += 1
        self.status.last = {"changed": report.changed, "reimported": report.reimported,
                            "added": report.added, "removed": report.removed,
                            "ms": round(elapsed, 1), "at": time.time()}
        parts = [", ".join(report.changed) or "no file changed"]
        if report.added:
            parts.append("+" + " +".join(report.added))
        if report.removed:
            parts.append("-" + " -".join(report.removed))
        if report.schema is not None:
            pushed = report.schema
            parts.append("schema pushed" + "".join(
                f", {label} {', '.join(items)}" for label, items in (
                    ("new tables", pushed.created_tables), ("new indexes", pushed.created_indexes),
                    ("rebuilt", pushed.rebuilt_indexes), ("retired", pushed.retired_tables
                                                          + pushed.retired_indexes)) if items))
        self.status.last["schema"] = report.schema is not None
        generated = self.status.last["generated"] = self.generate()
        if generated:
            parts.append("regenerated " + ", ".join(generated))
        self._echo(f"reloaded {'; '.join(parts)} in {elapsed:.0f} ms")
        if "api.py" in generated and self._imports_generated():
            await self.reload()  # app modules import the generated references: refresh them
