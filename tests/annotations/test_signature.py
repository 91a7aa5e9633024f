"""signature.py: a function's hints -> its args and returns, and the errors that name the
function, the parameter and the type."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal, TypedDict

import pytest
from pydantic import BaseModel

from reactive_store import Doc, Id
from reactive_store.annotations.signature import (
    UnresolvedHint,
    compile_signature,
    resolve_hints,
    uses_hints,
)
from reactive_store.errors import AnnotationError
from reactive_store.validators import v


class Attachment(TypedDict):
    name: str
    size: int


class NewOrder(BaseModel):
    title: str
    priority: Literal["low", "high"] = "low"


async def append(ctx: Any, sessionId: Id["chat_sessions"], content: str,  # noqa: F821, UP037
                 attachments: list[Attachment] = [],  # noqa: B006
                 order: NewOrder | None = None) -> Id["chat_messages"]:  # noqa: F821, UP037
    return sessionId


def test_the_issue_example_maps_to_its_v_form() -> None:
    signature = compile_signature(append, "@mutation append")
    expected = v.object({
        "sessionId": v.id("chat_sessions"),
        "content": v.string(),
        "attachments": v.optional(v.array(v.object({"name": v.string(), "size": v.int64()}))),
        "order": v.optional(v.union(v.object({
            "title": v.string(),
            "priority": v.optional(v.union(v.literal("low"), v.literal("high")))}), v.null())),
    })
    assert signature.args.to_json() == expected.to_json()
    assert signature.returns is not None
    assert signature.returns.to_json() == v.id("chat_messages").to_json()


def test_arguments_build_instances_and_copy_mutable_defaults() -> None:
    signature = compile_signature(append, "append")
    args = signature.args.validate({"sessionId": "s", "content": "c",
                                    "order": {"title": "t"}}, "args")
    first = signature.arguments(args)
    assert first["order"] == NewOrder(title="t")
    assert first["attachments"] == []
    first["attachments"].append({"name": "n", "size": 1})
    # The next call without `attachments` gets a fresh list, not the one changed above.
    assert signature.arguments(args)["attachments"] == []
    given = signature.args.validate({"sessionId": "s", "content": "c", "attachments": []},
                                    "args")
    assert signature.arguments(given)["attachments"] is given["attachments"]


def test_plain_signatures_pass_arguments_through() -> None:
    def plain(ctx: Any, a: int, b: list[str] | None = None) -> float:
        return 1.0

    signature = compile_signature(plain, "plain")
    args = {"a": 1}
    assert signature.arguments(args) is args
    assert not signature.plain_result
    assert signature.result(3) == 3


def test_results_with_models_become_plain() -> None:
    def get(ctx: Any) -> list[NewOrder]:
        return []

    signature = compile_signature(get, "get")
    assert signature.plain_result
    assert signature.result([NewOrder(title="t")]) == [{"title": "t", "priority": "low"}]


def test_a_function_without_return_hint_declares_no_returns() -> None:
    def f(ctx: Any, a: int):  # type: ignore[no-untyped-def]
        return a

    assert compile_signature(f, "f").returns is None


def test_uses_hints() -> None:
    def bare(ctx, a):  # type: ignore[no-untyped-def]
        pass

    def ctx_only(ctx: Any, a):  # type: ignore[no-untyped-def]
        pass

    def returns_only(ctx) -> None:  # type: ignore[no-untyped-def]
        pass

    def param(ctx, a: int):  # type: ignore[no-untyped-def]
        pass

    assert not uses_hints(bare)
    assert not uses_hints(ctx_only)
    assert uses_hints(returns_only)
    assert uses_hints(param)
    assert not uses_hints(len)


def no_hint(ctx: Any, a: int, b):  # type: ignore[no-untyped-def]
    pass


def star_args(ctx: Any, *rest: int) -> None:
    pass


def star_kwargs(ctx: Any, **rest: int) -> None:
    pass


def positional(ctx: Any, a: int, /) -> None:
    pass


def no_ctx() -> int:
    return 1


def keyword_ctx(*, ctx: Any) -> int:
    return 1


def bad_param(ctx: Any, when: datetime.datetime) -> None:
    pass


def bad_field(ctx: Any, order: Shipment | None = None) -> None:
    pass


def bad_return(ctx: Any) -> set[str]:
    return set()


def unknown_table_doc(ctx: Any) -> Doc["t"] | None:  # noqa: F821, UP037
    return None


@dataclasses.dataclass
class Shipment:
    when: datetime.datetime


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (no_hint, "@query f: parameter 'b' has no type hint; annotate every parameter after "
                  "ctx (Any for any value), or declare them all with args="),
        (star_args, "@query f: parameter *rest: arguments arrive by name, so *args has no "
                    "validator"),
        (star_kwargs, "@query f: parameter **rest: name every argument"),
        (positional, "@query f: parameter 'a' is positional-only, but arguments arrive by "
                     "name"),
        (no_ctx, "@query f: the first parameter must be ctx"),
        (keyword_ctx, "@query f: the first parameter must be ctx"),
        (bad_param, "@query f: parameter 'when': datetime.datetime has no validator; "
                    "supported: str, int, float, bool, None, bytes, Any, list[X]"),
        (bad_field, "@query f: parameter 'order': field 'when' of "
                    "tests.annotations.test_signature.Shipment: datetime.datetime has no "
                    "validator"),
        (bad_return, "@query f: return type: set[str] has no validator"),
    ],
    ids=lambda x: getattr(x, "__name__", "")
)
def test_errors_name_function_parameter_and_type(fn: Any, message: str) -> None:
    with pytest.raises(AnnotationError) as info:
        compile_signature(fn, "@query f")
    assert info.value.message.startswith(message), info.value.message


def test_unresolved_hints_name_the_parameter() -> None:
    def later(ctx: Any, a: int, b: DefinedLater) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(UnresolvedHint) as info:
        resolve_hints(later, "@query later")
    assert info.value.message == ("@query later: parameter 'b': its hint 'DefinedLater' cannot "
                                  "be resolved (NameError: name 'DefinedLater' is not defined)")

    def bad_return(ctx: Any) -> Nope:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(UnresolvedHint, match="@query r: return type: its hint 'Nope'"):
        resolve_hints(bad_return, "@query r")


def test_unknown_doc_tables_are_left_to_the_loader() -> None:
    # Which tables exist is known once the app's schema is loaded (app/loader.py).
    assert compile_signature(unknown_table_doc, "f").returns is not None
