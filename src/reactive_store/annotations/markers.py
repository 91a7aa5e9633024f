"""The annotation form's vocabulary: `Id["table"]` and `Doc["table"]`, the compiled `Shape`
of a hint, and model instances turned back into plain values (`to_plain`).

At runtime `Id["messages"]` is `Annotated[str, IdOf("messages")]` and `Doc["messages"]` is
`Annotated[dict[str, Any], DocOf("messages")]`: a plain string and a plain dict to Python,
pydantic and dataclasses alike, while the mapping reads the table from the metadata. Type
checkers see generic classes instead, so `Id[Literal["messages"]]` is a distinct string type
(as Convex's `Id<"messages">` is in TypeScript); `Id["messages"]` means the same at runtime.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, get_args, get_origin

from reactive_store.validators import Validator
from reactive_store.values import MAX_NESTING_DEPTH

Loader = Callable[[Any, str], Any]


@dataclass(frozen=True)
class Shape:
    """A compiled type hint. `load` turns a value `validator` accepted into the Python value
    the hint promises; None when the plain value already is one (no models or enums inside),
    which is also when a result needs no `to_plain` on its way out."""

    validator: Validator
    load: Loader | None = None


def show(hint: Any) -> str:
    """A type hint as a reader wrote it: `datetime.datetime`, `list[int]`, `NewOrder`."""
    if isinstance(hint, type):
        module = hint.__module__
        if module == "builtins" or module.startswith("_reactive_store_app_"):
            return hint.__qualname__
        return f"{module}.{hint.__qualname__}"
    return repr(hint).replace("typing.", "").replace("collections.abc.", "")


@dataclass(frozen=True)
class IdOf:
    """The metadata of `Id["table"]`: the value is an id of a document of `table`."""

    table: str


@dataclass(frozen=True)
class DocOf:
    """The metadata of `Doc["table"]`: the value is a stored document of `table`."""

    table: str


def table_argument(item: Any, what: str) -> str:
    """The table named in `Id[...]` / `Doc[...]`: a string, or a one-string Literal."""
    if get_origin(item) is Literal and len(get_args(item)) == 1:
        item = get_args(item)[0]
    if isinstance(item, str) and item:
        return item
    raise TypeError(f'{what}[...] takes one table name, as in {what}["messages"], got {item!r}')


_Table = TypeVar("_Table", bound=str)

if TYPE_CHECKING:

    class Id(str, Generic[_Table]):
        """An id of a document of one table; `Id[Literal["messages"]]` to type checkers."""

    class Doc(dict[str, Any], Generic[_Table]):
        """A stored document of one table, with its `_id` and `_creationTime`."""

else:

    class Id(str):
        """An id of a document of one table: `Id["messages"]` in a type hint."""

        def __class_getitem__(cls, table: Any) -> Any:
            return Annotated[str, IdOf(table_argument(table, "Id"))]

    class Doc(dict):
        """A stored document of one table: `Doc["messages"]` in a type hint."""

        def __class_getitem__(cls, table: Any) -> Any:
            return Annotated[dict[str, Any], DocOf(table_argument(table, "Doc"))]


def is_pydantic_model(cls: Any) -> bool:
    """Whether `cls` is a pydantic model class (without importing pydantic when unused)."""
    pydantic = sys.modules.get("pydantic")
    return (pydantic is not None and isinstance(cls, type)
            and issubclass(cls, pydantic.BaseModel))



_LEAVES = frozenset({str, int, float, bool, type(None), bytes})


def to_plain(value: Any, depth: int = 0) -> Any:
    """`value` with every pydantic model, dataclass, enum member and tuple inside it turned
    into the plain values a validator checks (dicts under the models' wire names, lists).

    Past the nesting limit it stops and returns what is left as it is, so a value too deep
    to be a Convex value is refused by encoding (naming the limit), never by recursion."""
    kind = type(value)
    if kind in _LEAVES or depth > MAX_NESTING_DEPTH:
        return value
    deeper = depth + 1
    if kind is list or kind is tuple:
        return [to_plain(item, deeper) for item in value]
    if kind is dict:
        return {key: to_plain(item, deeper) for key, item in value.items()}
    if isinstance(value, enum.Enum):
        return to_plain(value.value, depth)
    if is_pydantic_model(kind):
        return to_plain(value.model_dump(by_alias=True, exclude_computed_fields=True), depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name), deeper)
                for f in dataclasses.fields(value) if f.init}
    if isinstance(value, dict):
        return {key: to_plain(item, deeper) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item, deeper) for item in value]
    return value

