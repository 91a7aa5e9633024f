"""functions.py: canonical paths, the decorators, and Registry.resolve."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reactive_store.app.registry import (
    FunctionSpec,
    Kind,
    Registry,
    Visibility,
    action,
    canonical_path,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from reactive_store.errors import (
    BadRequest,
    FunctionNotFound,
    ValidationError,
    WrongFunctionKind,
)
from reactive_store.validators import ObjectValidator, v

# -- canonical_path --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["m", "m.js", "m:default", "m.js:default"])
def test_default_export_spellings_are_one_path(path: str) -> None:
    assert canonical_path(path) == "m:default"


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("m:f", "m:f"),
        ("m.js:f", "m:f"),
        ("dir/m.js:f", "dir/m:f"),
        ("dir/m:f", "dir/m:f"),
        ("a/b/c.js:fn_2", "a/b/c:fn_2"),
        ("a/b/c", "a/b/c:default"),
        ("my-mod:f", "my-mod:f"),
        ("_lib:f", "_lib:f"),
        ("dir.v2/m:f", "dir.v2/m:f"),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical
    assert canonical_path(canonical) == canonical  # idempotent


@pytest.mark.parametrize(
    "path",
    [
        "m:",
        ":f",
        ":",
        ".js:f",
        "m.ts:f",
        "m.js.js:f",
        "m.py:f",
        "dir/:f",
        "/m:f",
        "a//b:f",
        "../m:f",
        "dir/../m:f",
        "./m:f",
        "a b:f",
        "m:f:g",
        "dir\\m:f",
        "é:f",
    ],
)
def test_malformed_paths_are_bad_requests(path: str) -> None:
    with pytest.raises(BadRequest) as info:
        canonical_path(path)
    assert info.value.code == "BadConvexFunctionIdentifier"
    assert repr(path) in info.value.message


@pytest.mark.parametrize("path", [None, "", 5, ["m:f"], b"m:f"])
def test_non_string_or_empty_paths_are_bad_requests(path: Any) -> None:
    with pytest.raises(BadRequest, match="function path must be a non-empty string") as info:
        canonical_path(path)
    assert info.value.code == "BadConvexFunctionIdentifier"


def test_only_last_segment_may_not_have_dots() -> None:
    with pytest.raises(BadRequest, match=re.escape("modules may only end in '.js'")):
        canonical_path("dir/m.v2:f")


# -- decorators ------------------------------------------------------------------------

DECORATORS = [
    (query, Kind.QUERY, Visibility.PUBLIC),
    (mutation, Kind.MUTATION, Visibility.PUBLIC),
    (action, Kind.ACTION, Visibility.PUBLIC),
    (internal_query, Kind.QUERY, Visibility.INTERNAL),
    (internal_mutation, Kind.MUTATION, Visibility.INTERNAL),
    (internal_action, Kind.ACTION, Visibility.INTERNAL),
]


@pytest.mark.parametrize(("decorator", "kind", "visibility"), DECORATORS)
def test_bare_decorator(decorator: Any, kind: Kind, visibility: Visibility) -> None:
    @decorator
    def handler(ctx, x=1):
        """  Doubles x.  """
        return 2 * x

    assert isinstance(handler, FunctionSpec)
    assert handler.kind is kind
    assert handler.visibility is visibility
    assert handler.args.validator is None  # no hints, no args=: arguments are not checked
    assert handler.returns is None
    assert handler.path is None
    assert handler.doc == "Doubles x."
    assert handler(None, x=4) == 8


@pytest.mark.parametrize(("decorator", "kind", "visibility"), DECORATORS)
def test_bare_decorator_maps_type_hints(decorator: Any, kind: Kind,
                                        visibility: Visibility) -> None:
    @decorator
    def handler(ctx: Any, x: int = 1) -> int:
        return 2 * x

    assert handler.kind is kind
    assert handler.args.validator is not None
    assert handler.args.validator.to_json() == v.object({"x": v.optional(v.int64())}).to_json()
    assert handler.returns is not None
    assert handler.returns.to_json() == {"type": "bigint"}


@pytest.mark.parametrize(("decorator", "kind", "visibility"), DECORATORS)
def test_decorator_with_arguments(decorator: Any, kind: Kind, visibility: Visibility) -> None:
    @decorator(args={"n": v.int64()}, returns=v.string())
    def handler(ctx: Any, n: int) -> str:
        return str(n)

    assert handler.kind is kind
    assert handler.visibility is visibility
    assert isinstance(handler.args.validator, ObjectValidator)
    assert handler.args.validate({"n": 3}) == {"n": 3}
    assert handler.returns is not None
    assert handler.returns.to_json() == {"type": "string"}
    assert handler.doc == ""


def test_decorator_with_empty_parentheses() -> None:
    @query()
    def handler(ctx):
        return None

    assert handler.kind is Kind.QUERY
    assert handler.args.validator is None

    @query()
    def hinted(ctx: Any) -> None:
        return None

    assert hinted.args.validator is not None
    assert hinted.args.validator.to_json() == {"type": "object", "value": {}}
    assert hinted.returns is not None and hinted.returns.to_json() == {"type": "null"}


def test_args_as_v_object() -> None:
    spec = mutation(args=v.object({"a": v.float64()}))(lambda ctx, a: a)
    assert spec.args.validate({"a": 1}) == {"a": 1.0}


def test_args_empty_dict_means_no_args() -> None:
    spec = query(args={})(lambda ctx: None)
    assert spec.args.validate({}) == {}
    with pytest.raises(ValidationError, match="unexpected field 'x'"):
        spec.args.validate({"x": 1})


def test_args_must_be_an_object_validator() -> None:
    with pytest.raises(TypeError, match=re.escape("args= must be a dict of validators")):
        query(args=v.string())
    with pytest.raises(TypeError, match=re.escape("query(args=...)(): field name '$x'")):
        query(args={"$x": v.any()})
    with pytest.raises(TypeError, match=re.escape("query(args=...)() expects validators")):
        query(args={"x": int})


def test_returns_must_be_a_validator() -> None:
    with pytest.raises(TypeError, match=re.escape("returns= must be a validator, got 'str'")):
        mutation(returns="str")


def test_decorating_a_non_function() -> None:
    with pytest.raises(TypeError, match="@action decorates a function, got 5"):
        action(5)
    with pytest.raises(TypeError, match="@query decorates a function"):
        query(args={})("not callable")


def test_describe() -> None:
    @internal_mutation(args={"a": v.optional(v.string())}, returns=v.null())
    def handler(ctx: Any, a: str | None = None) -> None:
        """Does a thing."""

    registry = Registry()
    registry.add("dir/m:handler", handler)
    assert handler.describe() == {
        "path": "dir/m:handler",
        "kind": "mutation",
        "visibility": "internal",
        "args": {
            "type": "object",
            "value": {"a": {"fieldType": {"type": "string"}, "optional": True}},
        },
        "returns": {"type": "null"},
        "doc": "Does a thing.",
    }


def test_kind_titles() -> None:
    assert [k.title for k in Kind] == ["Query", "Mutation", "Action"]


# -- Registry --------------------------------------------------------------------------


def make_registry() -> tuple[Registry, dict[str, FunctionSpec]]:
    specs = {
        "m:get": query(lambda ctx: 1),
        "m:put": mutation(lambda ctx: 2),
        "m:run": action(lambda ctx: 3),
        "m:secret": internal_query(lambda ctx: 4),
        "m:default": query(lambda ctx: 5),
        "dir/n:f": mutation(lambda ctx: 6),
    }
    registry = Registry()
    for path, spec in specs.items():
        registry.add(path, spec)
    return registry, specs


def test_registry_basics() -> None:
    registry, specs = make_registry()
    assert len(registry) == len(specs)
    assert [id(s) for s in registry] == [id(s) for s in specs.values()]
    assert specs["m:get"].path == "m:get"


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        ("m:get", "m:get"),
        ("m.js:get", "m:get"),
        ("m", "m:default"),
        ("m.js", "m:default"),
        ("m:default", "m:default"),
        ("dir/n.js:f", "dir/n:f"),
    ],
)
def test_resolve_by_any_spelling(ref: str, path: str) -> None:
    registry, specs = make_registry()
    assert registry.resolve(ref) is specs[path]


def test_resolve_by_spec_object() -> None:
    registry, specs = make_registry()
    assert registry.resolve(specs["m:put"], kind=Kind.MUTATION) is specs["m:put"]
    stranger = query(lambda ctx: None)
    with pytest.raises(FunctionNotFound, match="not registered in this app"):
        registry.resolve(stranger)


def test_missing_function() -> None:
    registry, _ = make_registry()
    with pytest.raises(FunctionNotFound) as info:
        registry.resolve("m:nope")
    assert info.value.message == "Could not find public function for 'm:nope'."
    assert info.value.code == "FunctionNotFound"


@pytest.mark.parametrize("kind", [None, Kind.QUERY, Kind.MUTATION, Kind.ACTION])
def test_internal_function_looks_exactly_like_a_missing_one(kind: Kind | None) -> None:
    registry, _ = make_registry()
    empty = Registry()
    with pytest.raises(FunctionNotFound) as internal:
        registry.resolve("m:secret", kind=kind)
    with pytest.raises(FunctionNotFound) as missing:
        empty.resolve("m:secret", kind=kind)
    assert internal.value.message == missing.value.message
    assert internal.value.code == missing.value.code
    assert type(internal.value) is type(missing.value)


def test_internal_function_by_spec_object_is_also_hidden() -> None:
    registry, specs = make_registry()
    with pytest.raises(FunctionNotFound, match=re.escape("'m:secret'")):
        registry.resolve(specs["m:secret"])


def test_internal_ok_reaches_internal_functions() -> None:
    registry, specs = make_registry()
    assert registry.resolve("m:secret", internal_ok=True) is specs["m:secret"]
    assert registry.resolve("m:get", internal_ok=True) is specs["m:get"]
    with pytest.raises(WrongFunctionKind):
        registry.resolve("m:secret", kind=Kind.MUTATION, internal_ok=True)


@pytest.mark.parametrize(
    ("ref", "kind", "message"),
    [
        ("m:get", Kind.MUTATION,
         "Trying to execute m:get as Mutation, but it is defined as Query."),
        ("m.js:put", Kind.QUERY,
         "Trying to execute m:put as Query, but it is defined as Mutation."),
        ("m:run", Kind.QUERY, "Trying to execute m:run as Query, but it is defined as Action."),
        ("m", Kind.ACTION,
         "Trying to execute m:default as Action, but it is defined as Query."),
    ],
)
def test_wrong_kind_message(ref: str, kind: Kind, message: str) -> None:
    registry, _ = make_registry()
    with pytest.raises(WrongFunctionKind) as info:
        registry.resolve(ref, kind=kind)
    assert info.value.message == message
    assert info.value.code == "WrongFunctionKind"


def test_right_kind_resolves() -> None:
    registry, specs = make_registry()
    assert registry.resolve("m:get", kind=Kind.QUERY) is specs["m:get"]
    assert registry.resolve("m:run", kind=Kind.ACTION) is specs["m:run"]


def test_malformed_path_is_a_bad_request_not_missing() -> None:
    registry, _ = make_registry()
    with pytest.raises(BadRequest):
        registry.resolve("m:")
    with pytest.raises(BadRequest):
        registry.resolve(None)
