"""loader.py, for the annotation form: type hints mapped at load, errors at the function's
line, exported names (`name=`), and Doc tables checked against the schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reactive_store.app.loader import AppLoadError, load_app, unload_app
from reactive_store.validators import v
from tests.support import AppFiles

SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({"notes": define_table({"body": v.string()})})
"""


def load(make_app: Callable[[AppFiles], Path], functions: str) -> dict[str, dict[str, object]]:
    app = load_app(make_app({"schema/__init__.py": SCHEMA, "functions/notes.py": functions}))
    try:
        return {f.path or "": f.describe() for f in app.functions}
    finally:
        unload_app(app)


def load_error(make_app: Callable[[AppFiles], Path], functions: str) -> AppLoadError:
    root = make_app({"schema/__init__.py": SCHEMA, "functions/notes.py": functions})
    with pytest.raises(AppLoadError) as info:
        load_app(root)
    return info.value


def test_hints_may_name_classes_defined_further_down(make_app: Callable[..., Path]) -> None:
    found = load(make_app, """
        from __future__ import annotations
        from typing import TypedDict
        from reactive_store import mutation

        @mutation
        async def add(ctx, note: NewNote) -> None:
            pass

        class NewNote(TypedDict):
            body: str
        """)
    assert found["notes:add"]["args"] == v.object({"note": v.object({"body": v.string()})}
                                                  ).to_json()


def test_an_unmappable_hint_fails_the_load_at_the_function(make_app: Callable[..., Path]
                                                             ) -> None:
    error = load_error(make_app, """
        import datetime
        from reactive_store import mutation

        @mutation
        async def add(ctx, body: str, when: datetime.datetime) -> None:
            pass
        """)
    assert error.file is not None and error.file.endswith("functions/notes.py")
    assert error.line == 4  # the decorator's line: where the hint was read
    assert error.message.startswith(
        "AnnotationError: @mutation add: parameter 'when': datetime.datetime has no validator")


def test_a_misspelt_hint_fails_the_load_naming_the_parameter(make_app: Callable[..., Path]
                                                              ) -> None:
    error = load_error(make_app, """
        from __future__ import annotations
        from typing import TypedDict
        from reactive_store import query

        class Attachment(TypedDict):
            name: str

        @query
        async def find(ctx, a: Atachment) -> None:
            pass
        """)
    assert error.line == 8  # the def: the hint is resolved once the module has loaded
    assert error.message == ("AnnotationError: @query find: parameter 'a': its hint "
                             "'Atachment' cannot be resolved (NameError: name 'Atachment' is "
                             "not defined)")


def test_functions_are_exported_under_name(make_app: Callable[..., Path]) -> None:
    found = load(make_app, """
        from reactive_store import query

        @query(name="list")
        async def list_notes(ctx) -> list[str]:
            return []

        @query(name="get")
        async def _get(ctx, id: str) -> str:
            return id

        @query
        async def _helper(ctx) -> None:
            pass
        """)
    assert sorted(found) == ["notes:get", "notes:list"]
    assert found["notes:list"]["returns"] == {"type": "array", "value": {"type": "string"}}


def test_two_functions_under_one_name_fail_the_load(make_app: Callable[..., Path]) -> None:
    error = load_error(make_app, """
        from reactive_store import query

        @query(name="list")
        async def list_notes(ctx) -> None:
            pass

        @query
        async def list(ctx) -> None:
            pass
        """)
    assert error.message == ("two functions are exported as 'notes:list': @query list_notes "
                             "and @query list")
    assert error.line == 7


def test_one_function_bound_to_two_names_is_fine(make_app: Callable[..., Path]) -> None:
    app = load_app(make_app({"functions/notes.py": """
        from reactive_store import query

        @query
        async def get(ctx) -> None:
            pass

        fetch = get
        """}))
    try:
        assert app.functions.get("notes:get") is app.functions.get("notes:fetch") is not None
    finally:
        unload_app(app)


def test_doc_must_name_a_table_of_the_schema(make_app: Callable[..., Path]) -> None:
    error = load_error(make_app, """
        from reactive_store import Doc, query

        @query
        async def get(ctx) -> Doc["nots"] | None:
            return None
        """)
    assert error.message == ("@query get: returns use Doc['nots'], but the schema has no "
                             "table 'nots'")
    found = load(make_app, """
        from reactive_store import Doc, query, v

        @query(args={"doc": v.doc("notes")})
        async def echo(ctx, doc):
            return doc

        @query
        async def jobs(ctx) -> list[Doc["_scheduled_functions"]]:
            return []
        """)
    assert found["notes:echo"]["args"] == v.object({"doc": v.doc("notes")}).to_json()


def test_define_table_from_a_model(make_app: Callable[..., Path]) -> None:
    root = make_app({"schema/__init__.py": """
        from typing import NotRequired, TypedDict
        from pydantic import BaseModel
        from reactive_store import Id, define_schema, define_table

        class Session(BaseModel):
            title: str

        class Message(TypedDict):
            sessionId: Id["sessions"]
            body: str
            pinned: NotRequired[bool]

        schema = define_schema({
            "sessions": define_table(Session),
            "messages": define_table(Message).index("by_session", ["sessionId"]),
        })
        """})
    app = load_app(root)
    try:
        assert app.schema.to_json()["messages"] == {
            "document": v.object({"sessionId": v.id("sessions"), "body": v.string(),
                                  "pinned": v.optional(v.boolean())}).to_json(),
            "indexes": {"by_session": ["sessionId"]},
        }
    finally:
        unload_app(app)


def test_define_table_of_an_unmappable_model_fails_the_load(make_app: Callable[..., Path]
                                                             ) -> None:
    root = make_app({"schema/__init__.py": """
        import datetime
        from dataclasses import dataclass
        from reactive_store import define_schema, define_table

        @dataclass
        class Event:
            at: datetime.datetime

        schema = define_schema({"events": define_table(Event)})
        """})
    with pytest.raises(AppLoadError) as info:
        load_app(root)
    assert info.value.line == 9
    assert info.value.message == ("SchemaError: define_table(Event): field 'at' of Event: "
                                  "datetime.datetime has no validator; supported: str, int, "
                                  "float, bool, None, bytes, Any, list[X], dict[str, X], "
                                  "Literal[...], X | Y, an Enum, a TypedDict, dataclass or "
                                  "pydantic model, Id['table'], Doc['table']")
