"""Function decorators (`query`, `mutation`, `action`, internal kinds), paths, the registry."""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, overload

from reactive_store.annotations.signature import (
    Signature,
    UnresolvedHint,
    compile_signature,
    uses_hints,
)
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


class FunctionSpec:
    """A registered function: its kind, visibility, validators and handler.

    `args` and `returns` are the validators given to the decorator (`v.*` form) or mapped
    from the handler's type hints (annotation form; `compile()` maps them, at decoration
    or, when a hint names a class defined further down, once the module has loaded).
    `name` is the exported name when `name=` was given; `path` starts None and is set once
    when the loader registers the function (`Registry.add`).
    """

    def __init__(self, kind: Kind, visibility: Visibility, handler: Callable[..., Any],
                 args: ArgsSpec, returns: Validator | None = None, *, name: str | None = None,
                 doc: str = "", hinted: bool = False) -> None:
        self.kind = kind
        self.visibility = visibility
        self.handler = handler
        self.name = name
        self.doc = doc
        self.path: str | None = None
        self._args = args
        self._returns = returns
        self._hinted = hinted
        self._signature: Signature | None = None
        if hinted:
            with contextlib.suppress(UnresolvedHint):
                self.compile()

    @property
    def label(self) -> str:
        """How errors name this function: `@mutation append`."""
        prefix = "internal_" if self.visibility is Visibility.INTERNAL else ""
        return f"@{prefix}{self.kind.value} {getattr(self.handler, '__qualname__', '?')}"

    def compile(self) -> None:
        """Map the handler's type hints to validators (annotation form only; once).

        Raises AnnotationError naming the function, the parameter and the type."""
        if not self._hinted or self._signature is not None:
            return
        signature = compile_signature(self.handler, self.label)
        self._args = ArgsSpec(signature.args)
        if self._returns is None:  # returns= given explicitly wins over the annotation
            self._returns = signature.returns
        self._signature = signature

    @property
    def args(self) -> ArgsSpec:
        self.compile()
        return self._args

    @property
    def returns(self) -> Validator | None:
        self.compile()
        return self._returns

    def arguments(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validated arguments -> the handler's keyword arguments (instances built)."""
        return args if self._signature is None else self._signature.arguments(args)

    def result(self, value: Any) -> Any:
        """What the handler returned -> plain values for the result validator."""
        return value if self._signature is None else self._signature.result(value)

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
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _args_validator(kind: Kind, args: Mapping[str, Validator] | Validator | None
                    ) -> Validator | None:
    if args is None or isinstance(args, ObjectValidator):
        return args
    if isinstance(args, Validator):
        raise TypeError("args= must be a dict of validators or v.object({...})")
    return ObjectValidator(object_fields(args, f"{kind.value}(args=...)"))


class FunctionDecorator(Protocol):
    """`@query` bare, or `@query(args=..., returns=...)`."""

    @overload
    def __call__(self, fn: Callable[..., Any], /) -> FunctionSpec: ...
    @overload
    def __call__(self, *, args: Mapping[str, Validator] | Validator | None = None,
                 returns: Validator | None = None, name: str | None = None) -> Decorator: ...


def _make(kind: Kind, visibility: Visibility) -> FunctionDecorator:
    @overload
    def decorator(fn: Callable[..., Any], /) -> FunctionSpec: ...
    @overload
    def decorator(
        *, args: Mapping[str, Validator] | Validator | None = None,
        returns: Validator | None = None, name: str | None = None,
    ) -> Decorator: ...

    def decorator(
        fn: Callable[..., Any] | None = None,
        /,
        *,
        args: Mapping[str, Validator] | Validator | None = None,
        returns: Validator | None = None,
        name: str | None = None,
    ) -> FunctionSpec | Decorator:
        validator = _args_validator(kind, args)
        if returns is not None and not isinstance(returns, Validator):
            raise TypeError(f"returns= must be a validator, got {returns!r}")
        if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
            raise TypeError(f"name= must be a function name (a letter or '_', then letters, "
                            f"digits and '_'), got {name!r}")

        def wrap(handler: Callable[..., Any]) -> FunctionSpec:
            if not callable(handler):
                raise TypeError(f"@{kind.value} decorates a function, got {handler!r}")
            return FunctionSpec(
                kind, visibility, handler, ArgsSpec(validator), returns, name=name,
                doc=inspect.cleandoc(handler.__doc__ or "").strip(),
                hinted=args is None and uses_hints(handler),
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


def canonical_path(path: Any) -> str:
    """`m`, `m.js`, `m:default` and `m.js:default` -> `m:default`; `dir/m.js:f` -> `dir/m:f`."""
    if not isinstance(path, str) or not path:
        raise BadRequest(f"function path must be a non-empty string, got {path!r}",
                         "BadConvexFunctionIdentifier")
    return _canonical(path)


@functools.lru_cache(maxsize=4096)  # a call names its function up to three times
def _canonical(path: str) -> str:
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
        """Register `spec` under `path` (and name it so)."""
        spec.path = path
        self._by_path[path] = spec
        self._by_id[id(spec)] = spec

    def get(self, path: str) -> FunctionSpec | None:
        """The function registered under exactly this canonical path, if any."""
        return self._by_path.get(path)

    def __iter__(self) -> Iterator[FunctionSpec]:
        return iter(self._by_path.values())

    def items(self) -> Iterator[tuple[str, FunctionSpec]]:
        """(path, function) pairs; a function bound to two names appears under both."""
        return iter(self._by_path.items())

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
            if not isinstance(ref, str) and isinstance(getattr(ref, "path", None), str):
                ref = ref.path  # a generated reference (reactive_store.client)
            path = canonical_path(ref)
            spec = self._by_path.get(path)
        if spec is None or (spec.visibility is Visibility.INTERNAL and not internal_ok):
            shown = ref if isinstance(ref, str) else path
            # The admin may call internal functions too, so "public" would be wrong there;
            # the Convex CLI's `run` lists the functions on "Could not find function".
            what = "function" if internal_ok else "public function"
            raise FunctionNotFound(f"Could not find {what} for '{shown}'.")
        if kind is not None and spec.kind is not kind:
            raise WrongFunctionKind(
                f"Trying to execute {path} as {kind.title}, but it is defined as "
                f"{spec.kind.title}."
            )
        return spec
