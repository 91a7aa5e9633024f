"""One type hint -> a `Shape`: the `v.*` validator it means, and how a validated plain value
becomes the Python value the hint promises (a model instance, an enum member).

    str -> v.string()      int -> v.int64()       float -> v.float64()    bool -> v.boolean()
    None -> v.null()       bytes -> v.bytes()     Any -> v.any()
    list[X] -> v.array(X)  dict[str, X] -> v.record(v.string(), X)     X | Y -> v.union(X, Y)
    Literal["a", 1] -> v.union(v.literal("a"), v.literal(1))   Enum -> its values' literals
    Id["t"] -> v.id("t")   Doc["t"] -> v.doc("t")   Annotated[X, <a validator>] -> that one
    TypedDict, dataclass, pydantic model -> v.object({...}) (see `objects`)
"""

from __future__ import annotations

import collections.abc
import enum
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, NotRequired, Required, Union, get_args, get_origin

from reactive_store.annotations.markers import Doc, DocOf, Id, IdOf, Shape, show
from reactive_store.annotations.objects import object_shape
from reactive_store.errors import AnnotationError, ValidationError
from reactive_store.validators import Validator, v

SUPPORTED = ("str, int, float, bool, None, bytes, Any, list[X], dict[str, X], Literal[...], "
             "X | Y, an Enum, a TypedDict, dataclass or pydantic model, Id['table'], "
             "Doc['table']")

_SCALARS: dict[Any, Callable[[], Validator]] = {
    str: v.string, int: v.int64, float: v.float64, bool: v.boolean, bytes: v.bytes,
    type(None): v.null, None: v.null, Any: v.any,
}
_ARRAYS = (list, collections.abc.Sequence)
_RECORDS = (dict, collections.abc.Mapping)


def shape_of(hint: Any, seen: tuple[type, ...] = ()) -> Shape:
    """The Shape of `hint`; AnnotationError says what has no validator, and where.

    `seen` holds the model classes being mapped around this hint: a class inside itself
    is a recursive type, which validators cannot describe.
    """
    scalar = _scalar(hint)
    if scalar is not None:
        return Shape(scalar())
    origin = get_origin(hint)
    if origin is Annotated:
        return _annotated(hint, seen)
    if origin is Literal:
        return Shape(_literals(get_args(hint), hint))
    if origin is Union or origin is types.UnionType:
        return _union(get_args(hint), seen)
    if origin in _ARRAYS or hint in _ARRAYS:
        return _array(hint, seen)
    if origin in _RECORDS or hint in _RECORDS:
        return _record(hint, seen)
    if origin is Required or origin is NotRequired:
        raise AnnotationError(f"{show(hint)} is only meaningful on a field of a TypedDict")
    if isinstance(hint, typing.NewType):
        return shape_of(hint.__supertype__, seen)
    if isinstance(hint, str | typing.ForwardRef):
        raise AnnotationError(f"the forward reference {show(hint)} could not be resolved")
    if hint is Id or hint is Doc:
        raise AnnotationError(f"{hint.__name__} needs a table: {hint.__name__}['messages']")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint)
    if isinstance(hint, type):
        if hint in seen:
            raise AnnotationError(
                f"{show(hint)} contains itself; validators cannot describe recursive types "
                "(type the recursive field as Any)")
        found = object_shape(hint, shape_of, (*seen, hint))
        if found is not None:
            return found
    raise AnnotationError(f"{show(hint)} has no validator; supported: {SUPPORTED}")


def _scalar(hint: Any) -> Callable[[], Validator] | None:
    try:
        return _SCALARS.get(hint)
    except TypeError:  # unhashable, e.g. Annotated[X, <a validator holding a dict>]
        return None


def _annotated(hint: Any, seen: tuple[type, ...]) -> Shape:
    base, *metadata = get_args(hint)
    for item in metadata:
        if isinstance(item, IdOf):
            return Shape(v.id(item.table))
        if isinstance(item, DocOf):
            return Shape(v.doc(item.table))
        if isinstance(item, Validator):
            return Shape(item)
    return shape_of(base, seen)


def _literals(values: tuple[Any, ...], hint: Any) -> Validator:
    members: list[Validator] = []
    for value in values:
        if value is None:
            members.append(v.null())
        elif isinstance(value, str | int | float | bool) and not isinstance(value, enum.Enum):
            try:
                members.append(v.literal(value))
            except TypeError as exc:
                raise AnnotationError(f"{show(hint)}: {exc}") from None
        else:
            raise AnnotationError(f"{show(hint)}: literal {value!r} is not a string, number, "
                                  "boolean or None")
    return members[0] if len(members) == 1 else v.union(*members)


def _union(args: tuple[Any, ...], seen: tuple[type, ...]) -> Shape:
    members = [shape_of(arg, seen) for arg in args]
    validator = v.union(*(m.validator for m in members))
    if all(m.load is None for m in members):
        return Shape(validator)
    others = [m for m in members if m.validator.to_json() != {"type": "null"}]
    only = others[0].load if len(others) == 1 else None
    if only is not None:  # `Model | None`: None stays None, anything else is the model
        single = only
        return Shape(validator, lambda value, path: None if value is None else single(value, path))

    def load(value: Any, path: str) -> Any:
        # The union kept the first member that accepted the value; load it as that member.
        for member in members:
            if _accepts(member.validator, value, path):
                return value if member.load is None else member.load(value, path)
        return value

    return Shape(validator, load)


def _accepts(validator: Validator, value: Any, path: str) -> bool:
    try:
        validator.validate(value, path)
    except ValidationError:
        return False
    return True


def _array(hint: Any, seen: tuple[type, ...]) -> Shape:
    args = get_args(hint)
    item = shape_of(args[0], seen) if args else Shape(v.any())
    item_load = item.load
    if item_load is None:
        return Shape(v.array(item.validator))
    return Shape(v.array(item.validator), lambda value, path: [
        item_load(x, f"{path}[{i}]") for i, x in enumerate(value)])


def _record(hint: Any, seen: tuple[type, ...]) -> Shape:
    args = get_args(hint)
    keys, values = (shape_of(args[0], seen), shape_of(args[1], seen)) if args else (
        Shape(v.string()), Shape(v.any()))
    if not _string_like(keys.validator.to_json()):
        raise AnnotationError(f"{show(hint)}: keys must be str, Id['table'] or string "
                              f"Literals, got {show(args[0])}")
    value_load = values.load
    validator = v.record(keys.validator, values.validator)
    if value_load is None:
        return Shape(validator)
    return Shape(validator, lambda value, path: {
        k: value_load(x, f"{path}.{k}") for k, x in value.items()})


def _string_like(spec: dict[str, Any]) -> bool:
    if spec["type"] == "union":
        return all(_string_like(member) for member in spec["value"])
    return spec["type"] in ("string", "id") or (
        spec["type"] == "literal" and isinstance(spec["value"], str))


def _enum(cls: type[enum.Enum]) -> Shape:
    members = list(cls)
    if not members:
        raise AnnotationError(f"{show(cls)} has no members")
    literals = _literals(tuple(m.value for m in members), cls)
    return Shape(literals, lambda value, path: cls(value))
