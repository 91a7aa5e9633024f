"""docs/functions.md is generated from the registry and kept up to date."""

from __future__ import annotations

from pathlib import Path

from reactive_store.app.catalog import markdown
from reactive_store.app.loader import load_app, unload_app

ROOT = Path(__file__).resolve().parents[2]


def test_functions_doc_is_current() -> None:
    app = load_app(ROOT)
    try:
        expected = markdown(app.functions, app.schema)
    finally:
        unload_app(app)
    assert (ROOT / "docs" / "functions.md").read_text() == expected, (
        "docs/functions.md is stale: run `reactive-store docs --output docs/functions.md`")
