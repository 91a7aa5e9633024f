"""Validators (`v.string()`, `v.object({...})` ...) for table fields, function args and returns."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from reactive_store.errors import ValidationError
from reactive_store.ids import table_of
from reactive_store.types import Value
from reactive_store.values import INT64_MAX, INT64_MIN, encode, field_name_problem, type_name

Check = Callable[[Any], Any]


class _Invalid(Exception):
    """A compiled check refused a value; `diagnose` then finds where and why."""


_INVALID = _Invalid()


class Validator:
    """Checks a value and returns it normalised (e.g. an int accepted as float64 becomes float).

    Two ways to the same answer: `compiled` is a closure built once per validator that only
    checks and normalises (no paths, no messages: the fast path every call takes), and
    `diagnose` walks the value building each field's path, for the message when the
    compiled check refused it. They must accept exactly the same values with the same
    result (property-tested in tests/core/test_validators.py).
    """

    optional = False

    def validate(self, value: Value, path: str) -> Value:
        """`value` normalised, or ValidationError naming the offending field under `path`."""
        try:
            return self.compiled(value)
        except _Invalid:
            return self.diagnose(value, path)

    @functools.cached_property
    def compiled(self) -> Check:
        return self.compile()

    def compile(self) -> Check:
        """The fast check; by default `diagnose` with its errors turned into _Invalid."""
        diagnose = self.diagnose

        def check(value: Any) -> Any:
            try:
                return diagnose(value, "")
            except ValidationError:
                raise _INVALID from None

        return check

    def diagnose(self, value: Value, path: str) -> Value:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def _fail(self, value: Value, path: str) -> ValidationError:
        shown = "" if value is None or isinstance(value, bool) else " " + _preview(value)
        return ValidationError(f"{path}: expected {self.describe()}, got {type_name(value)}{shown}")


def _preview(value: Value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class _Simple(Validator):
    name: str
    check: Callable[[Any], bool]

    def diagnose(self, value: Value, path: str) -> Value:
        if not self.check(value):
            raise self._fail(value, path)
        return value

    def compile(self) -> Check:
        if self.name == "any":
            return _identity
        test = _TESTS.get(self.name, self.check)

        def check(value: Any) -> Any:
            if test(value):
                return value
            raise _INVALID

        return check

    def describe(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"type": self.name}


def _identity(value: Any) -> Any:
    return value


_TESTS: dict[str, Callable[[Any], bool]] = {
    "string": lambda x: isinstance(x, str), "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


class _Float64(Validator):
    def diagnose(self, value: Value, path: str) -> Value:
        try:
            return _float64(value)
        except _Invalid:
            raise self._fail(value, path) from None

    def compile(self) -> Check:
        return _float64

    def describe(self) -> str:
        return "float64"

    def to_json(self) -> dict[str, Any]:
        return {"type": "number"}


def _float64(value: Any) -> Any:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return float(value)
    raise _INVALID


def _int64(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and (
        INT64_MIN <= value <= INT64_MAX
    ):
        return value
    raise _INVALID


class _Int64(Validator):
    def diagnose(self, value: Value, path: str) -> Value:
        try:
            return _int64(value)
        except _Invalid:
            raise self._fail(value, path) from None

    def compile(self) -> Check:
        return _int64

    def describe(self) -> str:
        return "int64"

    def to_json(self) -> dict[str, Any]:
        return {"type": "bigint"}


@dataclass(frozen=True)
class _Id(Validator):
    table: str

    def diagnose(self, value: Value, path: str) -> Value:
        if not isinstance(value, str):
            raise self._fail(value, path)
        try:
            table = table_of(value)
        except ValueError as exc:
            raise ValidationError(f"{path}: {exc}") from None
        if table is not None and table != self.table:
            raise ValidationError(
                f"{path}: expected an id of table {self.table!r}, got an id of table {table!r}"
            )
        return value

    def compile(self) -> Check:
        expected = self.table

        def check(value: Any) -> Any:
            if not isinstance(value, str):
                raise _INVALID
            try:
                table = table_of(value)
            except ValueError:
                raise _INVALID from None
            if table is not None and table != expected:
                raise _INVALID
            return value

        return check

    def describe(self) -> str:
        return f"id of table {self.table!r}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "id", "tableName": self.table}


DOCUMENTS: ContextVar[Mapping[str, Validator] | None] = ContextVar("documents", default=None)
"""The document validator of every table (the engine sets it around each call), so that
`v.doc(table)` checks a document's fields against the table's current schema."""


@dataclass(frozen=True)
class _Doc(Validator):
    """`v.doc(table)`: a stored document of `table`, system fields included."""

    table: str

    def diagnose(self, value: Value, path: str) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value, path)
        for name in ("_id", "_creationTime"):
            if name not in value:
                raise ValidationError(f"{path}: missing system field {name!r} of a document "
                                      f"of table {self.table!r}")
        doc_id = _Id(self.table).validate(value["_id"], f"{path}._id")
        created = _Float64().validate(value["_creationTime"], f"{path}._creationTime")
        fields = {k: x for k, x in value.items() if k not in ("_id", "_creationTime")}
        tables = DOCUMENTS.get()
        table = None if tables is None else tables.get(self.table)
        if table is not None:
            fields = table.validate(fields, path)
        return {"_id": doc_id, "_creationTime": created, **fields}

    def compile(self) -> Check:
        table, id_check = self.table, _Id(self.table).compiled

        def check(value: Any) -> Any:
            if not isinstance(value, dict) or "_id" not in value or "_creationTime" not in value:
                raise _INVALID
            doc_id, created = id_check(value["_id"]), _float64(value["_creationTime"])
            fields = {k: x for k, x in value.items() if k not in ("_id", "_creationTime")}
            tables = DOCUMENTS.get()
            validator = None if tables is None else tables.get(table)
            if validator is not None:
                fields = validator.compiled(fields)
            return {"_id": doc_id, "_creationTime": created, **fields}

        return check

    def describe(self) -> str:
        return f"document of table {self.table!r}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "doc", "tableName": self.table}


@dataclass(frozen=True)
class _Literal(Validator):
    literal: Value

    def diagnose(self, value: Value, path: str) -> Value:
        if type(value) is type(self.literal) and value == self.literal:
            return value
        raise self._fail(value, path)

    def compile(self) -> Check:
        literal, kind = self.literal, type(self.literal)

        def check(value: Any) -> Any:
            if type(value) is kind and value == literal:
                return value
            raise _INVALID

        return check

    def describe(self) -> str:
        return f"literal {self.literal!r}"

    def to_json(self) -> dict[str, Any]:
        # Convex-encoded, so the literals 1 (int64), 1.0 and True stay distinct.
        return {"type": "literal", "value": encode(self.literal)}


@dataclass(frozen=True)
class _Array(Validator):
    item: Validator

    def diagnose(self, value: Value, path: str) -> Value:
        if not isinstance(value, list | tuple):
            raise self._fail(value, path)
        return [self.item.validate(x, f"{path}[{i}]") for i, x in enumerate(value)]

    def compile(self) -> Check:
        item = self.item.compiled

        def check(value: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise _INVALID
            return [item(x) for x in value]

        return check

    def describe(self) -> str:
        return f"array of {self.item.describe()}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "array", "value": self.item.to_json()}


@dataclass(frozen=True)
class ObjectValidator(Validator):
    """`v.object({...})`: exactly these fields, the optional ones may be missing."""

    fields: Mapping[str, Validator]

    def diagnose(self, value: Value, path: str) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value, path)
        extra = [k for k in value if k not in self.fields]
        if extra:
            raise ValidationError(f"{path}: unexpected field {extra[0]!r}")
        out: dict[str, Any] = {}
        for name, validator in self.fields.items():
            if name not in value:
                if not validator.optional:
                    raise ValidationError(
                        f"{path}: missing required field {name!r} ({validator.describe()})"
                    )
                continue
            out[name] = validator.validate(value[name], f"{path}.{name}")
        return out

    def compile(self) -> Check:
        fields = [(name, f.compiled, f.optional) for name, f in self.fields.items()]

        def check(value: Any) -> Any:
            if not isinstance(value, dict):
                raise _INVALID
            out = {}
            for name, item, optional in fields:
                if name in value:
                    out[name] = item(value[name])
                elif not optional:
                    raise _INVALID
            if len(out) != len(value):  # a field this object does not have
                raise _INVALID
            return out

        return check

    def describe(self) -> str:
        return "object {" + ", ".join(self.fields) + "}"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "object",
            "value": {
                k: {"fieldType": f.to_json(), "optional": f.optional}
                for k, f in self.fields.items()
            },
        }


@dataclass(frozen=True)
class _Record(Validator):
    keys: Validator
    values: Validator

    def diagnose(self, value: Value, path: str) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value, path)
        out: dict[str, Any] = {}
        for key, item in value.items():
            problem = field_name_problem(key)
            if problem is not None:
                raise ValidationError(f"{path}: {problem}")
            self.keys.validate(key, f"{path} key {key!r}")
            out[key] = self.values.validate(item, f"{path}.{key}")
        return out

    def compile(self) -> Check:
        keys, values = self.keys.compiled, self.values.compiled

        def check(value: Any) -> Any:
            if not isinstance(value, dict):
                raise _INVALID
            out = {}
            for key, item in value.items():
                if field_name_problem(key) is not None:
                    raise _INVALID
                keys(key)
                out[key] = values(item)
            return out

        return check

    def describe(self) -> str:
        return f"record of {self.keys.describe()} to {self.values.describe()}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "record", "keys": self.keys.to_json(), "values": self.values.to_json()}


@dataclass(frozen=True)
class UnionValidator(Validator):
    """`v.union(...)`: the first member that accepts the value validates it."""

    members: tuple[Validator, ...]

    def diagnose(self, value: Value, path: str) -> Value:
        for member in self.members:
            try:
                return member.validate(value, path)
            except ValidationError:
                continue
        raise self._fail(value, path)

    def compile(self) -> Check:
        # None first when null is a member: any member that accepts None returns it as it
        # is, so which one accepts it does not matter. Literals are one set lookup.
        nullable = any(_is_null(m) for m in self.members)
        rest = [m for m in self.members if not _is_null(m)]
        if rest and all(isinstance(m, _Literal) for m in rest):
            return _literal_set(frozenset((type(m.literal), m.literal) for m in rest
                                          if isinstance(m, _Literal)), nullable)
        members = [m.compiled for m in rest]

        def check(value: Any) -> Any:
            if nullable and value is None:
                return None
            for member in members:
                try:
                    return member(value)
                except _Invalid:
                    continue
            raise _INVALID

        return check


    def describe(self) -> str:
        return " | ".join(m.describe() for m in self.members)

    def to_json(self) -> dict[str, Any]:
        return {"type": "union", "value": [m.to_json() for m in self.members]}


def _is_null(validator: Validator) -> bool:
    return isinstance(validator, _Simple) and validator.name == "null"


def _literal_set(allowed: frozenset[tuple[type, Any]], nullable: bool) -> Check:
    def check(value: Any) -> Any:
        if nullable and value is None:
            return None
        try:
            if (type(value), value) in allowed:
                return value
        except TypeError:  # unhashable: a list or dict is no literal
            pass
        raise _INVALID

    return check


@dataclass(frozen=True)
class OptionalValidator(Validator):
    """`v.optional(x)`: a field that may be missing from its object."""

    inner: Validator
    optional: bool = field(default=True, init=False)

    def diagnose(self, value: Value, path: str) -> Value:
        return self.inner.validate(value, path)

    def compile(self) -> Check:
        return self.inner.compiled

    def describe(self) -> str:
        return f"optional {self.inner.describe()}"

    def to_json(self) -> dict[str, Any]:
        return self.inner.to_json()


def _is_bytes(x: Any) -> bool:
    return isinstance(x, bytes | bytearray | memoryview)


class _V:
    """The `v` namespace: constructors for every validator."""

    def string(self) -> Validator:
        return _Simple("string", lambda x: isinstance(x, str))

    def float64(self) -> Validator:
        return _Float64()

    number = float64

    def int64(self) -> Validator:
        return _Int64()

    def boolean(self) -> Validator:
        return _Simple("boolean", lambda x: isinstance(x, bool))

    def null(self) -> Validator:
        return _Simple("null", lambda x: x is None)

    def bytes(self) -> Validator:
        return _Simple("bytes", _is_bytes)

    def any(self) -> Validator:
        return _Simple("any", lambda x: True)

    def id(self, table: str) -> Validator:
        return _Id(_table_name(table, "v.id"))

    def doc(self, table: str) -> Validator:
        """A document of `table` as `ctx.db` returns it (`_id`, `_creationTime`, fields)."""
        return _Doc(_table_name(table, "v.doc"))

    def array(self, item: Validator) -> Validator:
        return _Array(_require(item, "v.array"))

    def object(self, fields: Mapping[str, Validator]) -> Validator:
        return ObjectValidator(object_fields(fields, "v.object"))

    def record(self, keys: Validator, values: Validator) -> Validator:
        return _Record(_require(keys, "v.record"), _require(values, "v.record"))

    def union(self, *members: Validator) -> Validator:
        if not members:
            raise TypeError("v.union() needs at least one member")
        return UnionValidator(tuple(_require(m, "v.union") for m in members))

    def literal(self, value: str | int | float | bool) -> Validator:
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise TypeError(f"v.literal() takes a string, number or boolean, got {value!r}")
        return _Literal(value)

    def optional(self, inner: Validator) -> Validator:
        return OptionalValidator(_require(inner, "v.optional"))


def _table_name(table: Any, where: str) -> str:
    if not isinstance(table, str) or not table:
        raise TypeError(f"{where}() takes a table name, got {table!r}")
    return table


def _require(x: Any, where: str) -> Validator:
    if not isinstance(x, Validator):
        raise TypeError(f"{where}() expects validators, got {x!r}")
    return x


def object_fields(fields: Mapping[str, Validator], where: str) -> dict[str, Validator]:
    """Check a field map of validators, as `v.object` and `define_table` take it."""
    if not isinstance(fields, Mapping):
        raise TypeError(f"{where}() expects a dict of field name -> validator, got {fields!r}")
    out: dict[str, Validator] = {}
    for name, validator in fields.items():
        problem = field_name_problem(name)
        if problem is not None:
            raise TypeError(f"{where}(): {problem}")
        out[name] = _require(validator, where)
    return out


v = _V()


def is_optional(validator: Validator) -> bool:
    """True for `v.optional(...)`: the field may be absent."""
    return validator.optional


@dataclass(frozen=True)
class ArgsSpec:
    """A function's argument validator, or None for unvalidated args."""

    validator: Validator | None

    def validate(self, args: Any) -> dict[str, Any]:
        if not isinstance(args, dict):
            raise ValidationError(f"args: expected an object, got {type_name(args)}")
        if self.validator is None:
            return args
        result: dict[str, Any] = self.validator.validate(args, "args")
        return result
