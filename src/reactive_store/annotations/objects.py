"""TypedDicts, dataclasses and pydantic models -> `v.object({...})`, and validated objects
back into instances.

A field with a default (or `NotRequired`, or `total=False`) is optional. Field names on the
wire are the attribute names, or a pydantic field's alias. A TypedDict stays a dict; a
dataclass is built with its constructor and a pydantic model with `model_validate`, so the
model's own checks (`Field(gt=0)`, validators) run too, and their failures read like any
other bad argument (`args.order.title: String should have at least 3 characters`).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, Required, get_args, get_origin

from reactive_store.annotations.markers import Loader, Shape, is_pydantic_model, show
from reactive_store.errors import AnnotationError, ValidationError
from reactive_store.validators import v

FieldMapper = Callable[[Any, tuple[type, ...]], Shape]


@dataclass(frozen=True)
class Field:
    """One field of an object type: its key on the wire, its Python attribute, its shape."""

    wire: str
    attr: str
    shape: Shape
    optional: bool


def object_shape(cls: type, field_shape: FieldMapper, seen: tuple[type, ...]) -> Shape | None:
    """The Shape of a TypedDict, dataclass or pydantic model class; None for other classes."""
    if is_typeddict(cls):
        fields = list(_typeddict_fields(cls, field_shape, seen))
        return Shape(_validator(cls, fields), _typeddict_loader(fields))
    if is_pydantic_model(cls):
        root = _root_model(cls, field_shape, seen)
        if root is not None:
            return root
        fields = list(_model_fields(cls, field_shape, seen))
        return Shape(_validator(cls, fields), _model_loader(cls))
    if dataclasses.is_dataclass(cls):
        fields = list(_dataclass_fields(cls, field_shape, seen))
        return Shape(_validator(cls, fields), _dataclass_loader(cls, fields))
    return None


def is_typeddict(cls: type) -> bool:
    """A `typing` or `typing_extensions` TypedDict (pydantic wants the latter before 3.12)."""
    extensions = sys.modules.get("typing_extensions")
    return typing.is_typeddict(cls) or (
        extensions is not None and bool(extensions.is_typeddict(cls)))


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:
        raise AnnotationError(f"{show(cls)}: its type hints cannot be resolved "
                              f"({type(exc).__name__}: {exc})") from None


def _field(cls: type, wire: str, attr: str, hint: Any, optional: bool,
           field_shape: FieldMapper, seen: tuple[type, ...]) -> Field:
    try:
        shape = field_shape(hint, seen)
    except AnnotationError as exc:
        raise AnnotationError(f"field {attr!r} of {show(cls)}: {exc.message}") from None
    return Field(wire, attr, shape, optional)


def _validator(cls: type, fields: list[Field]) -> Any:
    try:
        return v.object({f.wire: v.optional(f.shape.validator) if f.optional
                         else f.shape.validator for f in fields})
    except TypeError as exc:
        raise AnnotationError(f"{show(cls)}: {exc}") from None


# -- TypedDict ---------------------------------------------------------------------------------

def _typeddict_fields(cls: type, field_shape: FieldMapper, seen: tuple[type, ...]
                      ) -> Iterator[Field]:
    optional_keys: frozenset[str] = getattr(cls, "__optional_keys__", frozenset())
    for name, hint in _hints(cls).items():
        # Read Required/NotRequired from the resolved hint: with `from __future__ import
        # annotations`, Python 3.11 cannot see them in __required_keys__.
        hint, required = _requiredness(hint)
        optional = name in optional_keys if required is None else not required
        yield _field(cls, name, name, hint, optional, field_shape, seen)


def _requiredness(hint: Any) -> tuple[Any, bool | None]:
    """`NotRequired[X]` -> (X, False), `Required[X]` -> (X, True), else (hint, None); also
    inside `Annotated[...]`, whose metadata is kept."""
    origin = get_origin(hint)
    if origin is Required or origin is NotRequired:
        return get_args(hint)[0], origin is Required
    if origin is Annotated:
        base, *metadata = get_args(hint)
        inner, required = _requiredness(base)
        if required is not None:
            return Annotated[(inner, *metadata)], required
    return hint, None


def _typeddict_loader(fields: list[Field]) -> Loader | None:
    loading = [(f.wire, f.shape.load) for f in fields if f.shape.load is not None]
    if not loading:
        return None

    def load(value: Any, path: str) -> Any:
        out = dict(value)
        for wire, field_load in loading:
            if wire in out:
                out[wire] = field_load(out[wire], f"{path}.{wire}")
        return out

    return load


# -- dataclasses -------------------------------------------------------------------------------

def _dataclass_fields(cls: type, field_shape: FieldMapper, seen: tuple[type, ...]
                      ) -> Iterator[Field]:
    hints = _hints(cls)
    init_vars = [name for name, hint in hints.items() if isinstance(hint, dataclasses.InitVar)]
    if init_vars:
        raise AnnotationError(f"{show(cls)}: InitVar field {init_vars[0]!r} has no place in "
                              "a stored or sent object")
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        optional = (f.default is not dataclasses.MISSING
                    or f.default_factory is not dataclasses.MISSING)
        yield _field(cls, f.name, f.name, hints.get(f.name, f.type), optional, field_shape,
                     seen)


def _dataclass_loader(cls: type, fields: list[Field]) -> Loader:
    plan = [(f.wire, f.attr, f.shape.load) for f in fields]

    def load(value: Any, path: str) -> Any:
        kwargs = {attr: (item if field_load is None else field_load(item, f"{path}.{wire}"))
                  for wire, attr, field_load in plan
                  if (item := value.get(wire, _ABSENT)) is not _ABSENT}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValidationError(model_error_message(exc, path, cls)) from None

    return load


_ABSENT = object()


# -- pydantic ----------------------------------------------------------------------------------

def _model_fields(cls: Any, field_shape: FieldMapper, seen: tuple[type, ...]
                  ) -> Iterator[Field]:
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:
        hints = {}  # pydantic resolved them already: its FieldInfo has the annotation
    for name, info in cls.model_fields.items():
        wire = _wire_name(cls, name, info)
        hint = hints.get(name)
        if hint is None:
            hint = (Annotated[(info.annotation, *info.metadata)] if info.metadata
                    else info.annotation)
        yield _field(cls, wire, name, hint, not info.is_required(), field_shape, seen)


def _wire_name(cls: Any, name: str, info: Any) -> str:
    wire = info.validation_alias if info.validation_alias is not None else info.alias
    if wire is None:
        wire = name
    if not isinstance(wire, str):
        raise AnnotationError(f"field {name!r} of {show(cls)}: only a plain string alias can "
                              f"name a field on the wire, got {wire!r}")
    out = info.serialization_alias or info.alias or name
    if out != wire:
        raise AnnotationError(f"field {name!r} of {show(cls)}: it is read as {wire!r} but "
                              f"written as {out!r}; give it one alias")
    return wire


def _root_model(cls: Any, field_shape: FieldMapper, seen: tuple[type, ...]) -> Shape | None:
    pydantic = sys.modules["pydantic"]
    if not issubclass(cls, pydantic.RootModel):
        return None
    try:
        inner = field_shape(cls.model_fields["root"].annotation, seen)
    except AnnotationError as exc:
        raise AnnotationError(f"root of {show(cls)}: {exc.message}") from None
    return Shape(inner.validator, _model_loader(cls))


def _model_loader(cls: Any) -> Loader:
    def load(value: Any, path: str) -> Any:
        try:
            return cls.model_validate(value)
        except ValueError as exc:
            raise ValidationError(model_error_message(exc, path, cls)) from None

    return load


def model_error_message(exc: Exception, path: str, cls: type) -> str:
    """A model's own check failing, as `path.field: message` (pydantic) or `path: message`."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"{path}: {show(cls)}: {exc}"
    found = errors()
    if not found:
        return f"{path}: {show(cls)}: {exc}"
    first = found[0]
    where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{where}: {first['msg']}{more}"
