"""Type-check client code against generated files: `tsc --noEmit` with the npm `convex`
package of tests/js, and `mypy --strict` with this project's reactive_store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
TSC = JS_DIR / "node_modules" / ".bin" / "tsc"

TSCONFIG = {
    "compilerOptions": {
        "strict": True, "noEmit": True, "target": "ES2022", "module": "ESNext",
        "moduleResolution": "Bundler", "lib": ["ES2022", "DOM"], "types": [],
        "skipLibCheck": True, "noUnusedLocals": True, "noUnusedParameters": True,
        "exactOptionalPropertyTypes": True, "verbatimModuleSyntax": True,
    },
    "include": ["**/*.ts", "**/*.d.ts"],
}


def tsc_binary() -> Path:
    """tests/js's `tsc`, after `npm ci` when it is not installed yet."""
    if not TSC.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("the TypeScript checks need `npm` on PATH (Node >= 20)", pytrace=False)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True,
                       capture_output=True, timeout=600)
    return TSC


def tsc(folder: Path) -> subprocess.CompletedProcess[str]:
    """`tsc --noEmit` over every .ts file in `folder` (strict, with tests/js/node_modules)."""
    binary = tsc_binary()
    modules = folder / "node_modules"
    if not modules.exists():
        modules.symlink_to(JS_DIR / "node_modules", target_is_directory=True)
    (folder / "tsconfig.json").write_text(json.dumps(TSCONFIG, indent=2))
    return subprocess.run([str(binary), "-p", str(folder), "--pretty", "false"],
                          capture_output=True, text=True, timeout=300, check=False)


def mypy(folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """`mypy --strict` on `files` in `folder`, as a separate process (no cache kept)."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
         "/dev/null", "--no-error-summary", "--hide-error-context", *files],
        cwd=folder, capture_output=True, text=True, timeout=300, check=False)
