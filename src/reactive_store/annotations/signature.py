"""A function's type hints -> its argument and result validators, and the conversions between
the plain values on the wire and the instances the function works with.

    @mutation
    async def append(ctx, sessionId: Id["chat_sessions"], content: str,
                     order: NewOrder | None = None) -> Id["chat_messages"]: ...

means `args={"sessionId": v.id("chat_sessions"), "content": v.string(), "order":
v.optional(v.union(v.object({...}), v.null()))}, returns=v.id("chat_messages")`. The first
parameter is `ctx`; every other one needs a hint, and one with a default is optional.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reactive_store.annotations.mapping import shape_of
from reactive_store.annotations.markers import Loader, Shape, to_plain
from reactive_store.errors import AnnotationError
from reactive_store.validators import ObjectValidator, Validator, v

_MUTABLE_DEFAULTS = (list, dict, set)


class UnresolvedHint(AnnotationError):
    """A hint names something not defined (yet): a class further down the module, or a typo.

    The decorator tries again once its module has finished importing."""

    code = "AnnotationError"


def uses_hints(fn: Callable[..., Any]) -> bool:
    """Whether `fn` declares types beyond its first parameter (ctx): any parameter or
    return annotation makes it the annotation form."""
    annotations = getattr(fn, "__annotations__", None)
    if not annotations:
        return False
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    ctx = params[0] if params else None
    return any(name != ctx for name in annotations)


@dataclass(frozen=True)
class Signature:
    """A compiled function signature.

    `loads` converts arguments that hold models or enums (name, loader); `copies` are the
    mutable defaults (`= []`) a call without that argument gets a fresh copy of, so one call
    never sees another's changes; `plain_result` says whether results may hold instances.
    """

    args: ObjectValidator
    returns: Validator | None
    loads: tuple[tuple[str, Loader], ...]
    copies: tuple[tuple[str, Any], ...]
    plain_result: bool

    def arguments(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validated plain arguments -> the keyword arguments of the function."""
        if not self.loads and not self.copies:
            return args
        out = dict(args)
        for name, load in self.loads:
            if name in out:
                out[name] = load(out[name], f"args.{name}")
        for name, default in self.copies:
            if name not in out:
                out[name] = copy.deepcopy(default)
        return out

    def result(self, value: Any) -> Any:
        """What the function returned -> plain values for the result validator."""
        return to_plain(value) if self.plain_result else value


def compile_signature(fn: Callable[..., Any], label: str) -> Signature:
    """The Signature of `fn`; AnnotationError names `label` (the function), the parameter
    and the type that has no validator."""
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise AnnotationError(f"{label}: the first parameter must be ctx")
    hints = resolve_hints(fn, label)
    fields: dict[str, Validator] = {}
    loads: list[tuple[str, Loader]] = []
    copies: list[tuple[str, Any]] = []
    for param in params[1:]:
        _check_kind(param, label)
        if param.name not in hints:
            raise AnnotationError(
                f"{label}: parameter {param.name!r} has no type hint; annotate every "
                "parameter after ctx (Any for any value), or declare them all with args=")
        shape = _shape(hints[param.name], f"{label}: parameter {param.name!r}")
        optional = param.default is not inspect.Parameter.empty
        fields[param.name] = v.optional(shape.validator) if optional else shape.validator
        if shape.load is not None:
            loads.append((param.name, shape.load))
        if optional and isinstance(param.default, _MUTABLE_DEFAULTS):
            copies.append((param.name, param.default))
    returns = _shape(hints["return"], f"{label}: return type") if "return" in hints else None
    args = v.object(fields)
    assert isinstance(args, ObjectValidator)
    return Signature(args, None if returns is None else returns.validator, tuple(loads),
                     tuple(copies), returns is not None and returns.load is not None)


def _check_kind(param: inspect.Parameter, label: str) -> None:
    if param.kind is inspect.Parameter.VAR_POSITIONAL:
        raise AnnotationError(f"{label}: parameter *{param.name}: arguments arrive by name, "
                              "so *args has no validator")
    if param.kind is inspect.Parameter.VAR_KEYWORD:
        raise AnnotationError(f"{label}: parameter **{param.name}: name every argument, or "
                              "declare them with args= to take them as **kwargs")
    if param.kind is inspect.Parameter.POSITIONAL_ONLY:
        raise AnnotationError(f"{label}: parameter {param.name!r} is positional-only, but "
                              "arguments arrive by name")


def _shape(hint: Any, where: str) -> Shape:
    try:
        return shape_of(hint)
    except AnnotationError as exc:
        raise AnnotationError(f"{where}: {exc.message}") from None


def resolve_hints(fn: Callable[..., Any], label: str) -> dict[str, Any]:
    """`fn`'s type hints, string annotations evaluated; UnresolvedHint names the first
    parameter whose hint names something undefined."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        pass
    raw: dict[str, Any] = dict(getattr(fn, "__annotations__", {}))
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    for name, annotation in raw.items():
        holder = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            typing.get_type_hints(holder, globalns=namespace, include_extras=True)
        except Exception as exc:
            what = "return type" if name == "return" else f"parameter {name!r}"
            raise UnresolvedHint(f"{label}: {what}: its hint {annotation!r} cannot be "
                                 f"resolved ({type(exc).__name__}: {exc})") from None
    raise AnnotationError(f"{label}: its type hints cannot be resolved")
