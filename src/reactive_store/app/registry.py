"""Function decorators (`query`, `mutation`, `action`, internal kinds), paths, the registry."""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from reactive_store.errors import BadRequest, FunctionNotFound, WrongFunctionKind
from reactive_store.validators import ArgsSpec, ObjectValidator, Validator, object_fields


class Kind(enum.Enum):
    QUERY = "query"
    MUTATION = "mutation"
    ACTION = "action"

    @property
    def title(self) -> str:
        return self.value.capitalize()


class Visibility(enum.Enum):
    PUBLIC = "public"
    INTERNAL = "internal"


@dataclass
class FunctionSpec:
    """A registered function: its kind, visibility, validators and handler.

    `path` starts None and is set once when the loader registers it (`Registry.add`).
    """

    kind: Kind
    visibility: Visibility
    handler: Callable[..., Any]
    args: ArgsSpec
    returns: Validator | None = None
    path: str | None = None
    doc: str = field(default="")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.handler(*args, **kwargs)

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind.value,
            "visibility": self.visibility.value,
            "args": None if self.args.validator is None else self.args.validator.to_json(),
            "returns": None if self.returns is None else self.returns.to_json(),
            "doc": self.doc,
        }


Decorator = Callable[[Callable[..., Any]], FunctionSpec]


def _make(kind: Kind, visibility: Visibility) -> Any:
    @overload
    def decorator(fn: Callable[..., Any], /) -> FunctionSpec: ...
    @overload
    def decorator(
        *, args: Mapping[str, Validator] | Validator | None = None, returns: Validator | None = None
    ) -> Decorator: ...

    def decorator(
        fn: Callable[..., Any] | None = None,
        /,
        *,
        args: Mapping[str, Validator] | Validator | None = None,
        returns: Validator | None = None,
    ) -> FunctionSpec | Decorator:
        if args is None:
            validator: Validator | None = None
        elif isinstance(args, Validator):
            if not isinstance(args, ObjectValidator):
                raise TypeError("args= must be a dict of validators or v.object({...})")
            validator = args
        else:
            validator = ObjectValidator(object_fields(args, f"{kind.value}(args=...)"))
        if returns is not None and not isinstance(returns, Validator):
            raise TypeError(f"returns= must be a validator, got {returns!r}")

        def wrap(handler: Callable[..., Any]) -> FunctionSpec:
            if not callable(handler):
                raise TypeError(f"@{kind.value} decorates a function, got {handler!r}")
            return FunctionSpec(
                kind, visibility, handler, ArgsSpec(validator), returns,
                doc=inspect.cleandoc(handler.__doc__ or "").strip(),
            )

        return wrap if fn is None else wrap(fn)

    return decorator


query = _make(Kind.QUERY, Visibility.PUBLIC)
mutation = _make(Kind.MUTATION, Visibility.PUBLIC)
action = _make(Kind.ACTION, Visibility.PUBLIC)
internal_query = _make(Kind.QUERY, Visibility.INTERNAL)
internal_mutation = _make(Kind.MUTATION, Visibility.INTERNAL)
internal_action = _make(Kind.ACTION, Visibility.INTERNAL)

_SEGMENT = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def canonical_path(path: Any) -> str:
    """`m`, `m.js`, `m:default` and `m.js:default` -> `m:default`; `dir/m.js:f` -> `dir/m:f`."""
    if not isinstance(path, str) or not path:
        raise BadRequest(f"function path must be a non-empty string, got {path!r}",
                         "BadConvexFunctionIdentifier")
    module, sep, name = path.rpartition(":")
    if not sep:
        module, name = path, "default"
    if module.endswith(".js"):
        module = module[:-3]
    segments = module.split("/")
    if not _NAME.match(name) or not all(
        _SEGMENT.match(s) and s not in (".", "..") for s in segments
    ):
        raise BadRequest(f"invalid function path {path!r}: expected 'module:function'",
                         "BadConvexFunctionIdentifier")
    if "." in segments[-1]:
        raise BadRequest(f"invalid function path {path!r}: modules may only end in '.js'",
                         "BadConvexFunctionIdentifier")
    return f"{module}:{name}"


class Registry:
    """Every function of an app by canonical path; an immutable snapshot once loaded."""

    def __init__(self) -> None:
        self._by_path: dict[str, FunctionSpec] = {}
        self._by_id: dict[int, FunctionSpec] = {}

    def add(self, path: str, spec: FunctionSpec) -> None:
        spec.path = path
        self._by_path[path] = spec
        self._by_id[id(spec)] = spec

    def __iter__(self) -> Iterator[FunctionSpec]:
        return iter(self._by_path.values())

    def __len__(self) -> int:
        return len(self._by_path)

    def resolve(
        self, ref: Any, *, kind: Kind | None = None, internal_ok: bool = False
    ) -> FunctionSpec:
        """The function a path or decorated object names, checked for kind and visibility.

        Internal functions look exactly like missing ones to callers without internal access.
        """
        if isinstance(ref, FunctionSpec):
            spec = self._by_id.get(id(ref))
            if spec is None:
                raise FunctionNotFound("that function object is not registered in this app")
            path = spec.path or "?"
        else:
            path = canonical_path(ref)
            spec = self._by_path.get(path)
        if spec is None or (spec.visibility is Visibility.INTERNAL and not internal_ok):
            shown = ref if isinstance(ref, str) else path
            raise FunctionNotFound(f"Could not find public function for '{shown}'.")
        if kind is not None and spec.kind is not kind:
            raise WrongFunctionKind(
                f"Trying to execute {path} as {kind.title}, but it is defined as "
                f"{spec.kind.title}."
            )
        return spec
