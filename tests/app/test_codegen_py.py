"""codegen_py.py: the generated `api.py`, its names, and client code that `mypy --strict`
accepts with it (and the wrong calls it must refuse)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from reactive_store.app.codegen import GENERATED_DIR, generate, write_files
from reactive_store.app.codegen_model import app_model
from reactive_store.app.codegen_py import identifier, pascal, snake, typed_dict_source
from reactive_store.app.loader import load_app, unload_app
from reactive_store.client import ActionReference, MutationReference, QueryReference
from reactive_store.engine.system_tables import readable_system_tables
from tests.app.codegen_app import CODEGEN_APP
from tests.support import write_app
from tests.typecheck import mypy


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_app(tmp_path_factory.mktemp("codegen") / "app", CODEGEN_APP)
    app = load_app(root)
    try:
        model = app_model(app.functions, app.schema, readable_system_tables())
        files = generate(model, python=True)
    finally:
        unload_app(app)
    out = root / GENERATED_DIR
    assert write_files(out, files) == ["api.py"]
    return out


def load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("generated_api", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_references_at_runtime(generated: Path) -> None:
    module = load_module(generated / "api.py")
    assert module.api.notes.get == QueryReference("notes:get")
    assert module.api.notes.add == MutationReference("notes:add")
    assert module.api.notes.list == QueryReference("notes:list")  # exported with name="list"
    assert module.api.dir.sub.ping == ActionReference("dir/sub:ping")
    assert module.api.dir.sub.import_ == ActionReference("dir/sub:import")  # a keyword
    assert module.internal.notes.secret == QueryReference("notes:secret")
    assert not hasattr(module.api.notes, "secret")


def test_types(generated: Path) -> None:
    source = (generated / "api.py").read_text()
    for text in [
        "class NotesDoc(TypedDict):\n    _id: Id[Literal[\"notes\"]]\n    _creationTime: float\n"
        "    title: str\n    views: int\n    data: NotRequired[bytes]\n",
        '    kind: Literal["a", 5, True] | float\n',
        'NotesDocNested = TypedDict("NotesDocNested", {\n    "x": float,\n    "my-key": str,\n})',
        "EventsDoc: TypeAlias = EventsDoc0 | EventsDoc1",
        "NotesGetRef: TypeAlias = QueryReference[[NotesGetArgs], NotesDoc | None]",
        "NotesStatsRef: TypeAlias = QueryReference[[NotesStatsArgs], dict[str, int]]",
        "NotesRawRef: TypeAlias = QueryReference[[dict[str, Any]], Any]",
        "class NoArgs(TypedDict):\n    pass",
        "NotesCountRef: TypeAlias = QueryReference[[NoArgs], float]",
        "    list: NotesListRef = QueryReference(\"notes:list\")",
        '    """Add a note.\n\n    Returns its id; */ closes no comment."""',
        "# ruff: noqa",
    ]:
        assert text in source, text


@pytest.mark.parametrize(("name", "expected"), [
    ("listBySession", "list_by_session"), ("getHTTPStatus", "get_http_status"),
    ("already_snake", "already_snake"), ("import", "import_"), ("v2Items", "v2_items"),
    ("class", "class_")])
def test_snake(name: str, expected: str) -> None:
    assert snake(name) == expected


def test_names() -> None:
    assert pascal("chat_sessions") == "ChatSessions"
    assert pascal("chatMessages_listBySession") == "ChatMessagesListBySession"
    assert identifier("my-mod") == "my_mod" and identifier("2fa") == "_2fa"
    assert typed_dict_source("A", [("from", "str")]) == 'A = TypedDict("A", {\n    "from": str,\n})'
    assert typed_dict_source("B", [("list", "str"), ("x", "list[str]")]).startswith(
        'B = TypedDict("B"')  # `list` as a class-body key would shadow the builtin


CLIENT = """
from __future__ import annotations

from typing import Literal

from reactive_store import Id
from reactive_store.client import Client

from _generated.api import EventsDoc, NotesDoc, api


async def calls(client: Client) -> str:
    note_id: Id[Literal["notes"]] = await client.mutation(api.notes.add, {
        "note": {"title": "t", "views": 1, "kind": 5, "nested": {"x": 1.0, "my-key": "k"}}})
    note: NotesDoc | None = await client.query(api.notes.get, {"id": note_id})
    views: int | None = None if note is None else note["views"]
    notes: list[NotesDoc] = await client.query(api.notes.list, {"kind": "b"})
    count: float = await client.query(api.notes.count, {})
    pong: Literal["pong"] = await client.action(api.dir.sub.ping, {"times": 2})
    events: list[EventsDoc] = await client.query(api.notes.events, {})
    kinds = [e["x"] if e["type"] == "click" else e["key"] for e in events]
    async for update in client.subscribe(api.notes.get, {"id": note_id}):
        title: str | None = None if update is None else update["title"]
        break
    raw = await client.query("notes:raw", {"anything": 1})
    return f"{views} {len(notes)} {count} {pong} {kinds} {title} {raw}"


async def refused(client: Client, nid: Id[Literal["notes"]],
                  event_id: Id[Literal["events"]]) -> None:
    await client.query(api.notes.get, {"id": event_id})  # type: ignore[typeddict-item]
    await client.query(api.notes.get, {"id": "plain string"})  # type: ignore[typeddict-item]
    await client.query(api.notes.get, {})  # type: ignore[typeddict-item]
    await client.query(api.notes.get, {"id": nid, "x": 1})  # type: ignore[typeddict-unknown-key]
    await client.query(api.notes.list, {"kind": "c"})  # type: ignore[typeddict-item]
    await client.query(api.notes.add, {"note": {}})  # type: ignore[arg-type]
    await client.query(api.notes.nope, {})  # type: ignore[attr-defined]
    wrong: str = await client.query(api.notes.count, {})  # type: ignore[arg-type]
    print(wrong)
"""

WRONG = """
from reactive_store.client import Client

from _generated.api import api


async def get(client: Client) -> None:
    await client.query(api.notes.get, {"id": 42})
"""


def test_client_code_type_checks(generated: Path) -> None:
    (generated.parent / "client.py").write_text(CLIENT)
    result = mypy(generated.parent, "client.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_argument_type_fails_mypy(generated: Path) -> None:
    (generated.parent / "wrong.py").write_text(WRONG)
    result = mypy(generated.parent, "wrong.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == (
        'wrong.py:8: error: Incompatible types (expression has type "int", TypedDict item "id" '
        'has type "Id[Literal[\'notes\']]")  [typeddict-item]\n')
