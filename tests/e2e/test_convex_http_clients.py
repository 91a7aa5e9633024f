"""The official Convex HTTP clients against a real `reactive-store serve` process.

Two clients, one contract (protocol.md §1 and §4.2): the npm `ConvexHttpClient` (convex 1.48.0,
driven through tests/js/http_client.mjs in a Node subprocess) and the PyPI `convex` package's
`convex.http_client.ConvexHttpClient`. Where both should behave alike, one test body runs against
both (ids "npm" and "pypi"). Every client result is normalised to Convex-encoded JSON
(`convexToJson` / `convex.convex_to_json`), so int64, bytes and special floats keep their types in
the comparison: `{"$integer": ...}`, `{"$bytes": ...}`, `{"$float": ...}`.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from convex import ConvexError, ConvexInt64, convex_to_json, json_to_convex
from convex.http_client import ConvexExecutionError, ConvexHttpClient

from tests.e2e.servers import ServeApp
from tests.support import ACCOUNTS_APP, write_app

pytestmark = pytest.mark.e2e

ECHO_APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema

        schema = define_schema({})
    """,
    "functions/echo.py": """
        from reactive_store import ConvexError, action, internal_query, query, v

        @query(args={"value": v.any()})
        async def echo(ctx, value):
            return value

        @action(args={"value": v.any()})
        async def echo_action(ctx, value):
            return value

        @query(args={"data": v.any()})
        async def fail_with(ctx, data):
            raise ConvexError(data)

        @internal_query(args={})
        async def secret(ctx):
            return "internal only"
    """,
}

Call = dict[str, Any]
Result = dict[str, Any]


# --- Convex-encoded JSON builders ------------------------------------------------------------

def i64(n: int) -> dict[str, str]:
    return {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}


def f64(x: float) -> dict[str, str]:
    return {"$float": base64.b64encode(struct.pack("<d", x)).decode()}


def raw(data: bytes) -> dict[str, str]:
    return {"$bytes": base64.b64encode(data).decode()}


def call(kind: str, path: str, args: dict[str, Any] | None = None) -> Call:
    return {"kind": kind, "path": path, "args": args or {}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- the two clients ------------------------------------------------------------------------

class NpmClient:
    """npm ConvexHttpClient: each `run` is one Node process and one client object."""

    name = "npm"

    def __init__(self, url: str, js_dir: Path) -> None:
        self.url = url
        self.js_dir = js_dir

    def run(self, calls: list[Call]) -> list[Result]:
        proc = subprocess.run(
            ["node", str(self.js_dir / "http_client.mjs"), self.url],
            input=json.dumps(calls), capture_output=True, text=True, timeout=30,
            cwd=self.js_dir, check=False,
        )
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or len(lines) != len(calls):
            pytest.fail(f"http_client.mjs exit {proc.returncode}, {len(lines)} result lines for "
                        f"{len(calls)} calls\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return [json.loads(line) for line in lines]


def to_py(value: Any) -> Any:
    """Convex-encoded JSON -> what a Python caller passes (ConvexInt64, bytes, float)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)  # a JSON number is a float64, as in JS
    if isinstance(value, list):
        return [to_py(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            return json_to_convex(value)
        return {k: to_py(v) for k, v in value.items()}
    return value


class PypiClient:
    """PyPI convex.http_client.ConvexHttpClient, in process."""

    name = "pypi"

    def __init__(self, url: str) -> None:
        self.client = ConvexHttpClient(url)

    def run(self, calls: list[Call]) -> list[Result]:
        return [self._one(c) for c in calls]

    def _one(self, c: Call) -> Result:
        method = {"query": self.client.query, "mutation": self.client.mutation,
                  "action": self.client.action}.get(c["kind"])
        if method is None:
            pytest.fail(f"the PyPI HTTP client has no {c['kind']!r}")
        try:
            value = method(c["path"], to_py(c["args"]))
        except ConvexError as exc:
            # PY passes errorData through *undecoded*: it already is Convex-encoded JSON.
            return {"ok": False, "name": "ConvexError", "message": str(exc), "data": exc.data}
        except Exception as exc:
            return {"ok": False, "name": type(exc).__name__, "message": str(exc)}
        return {"ok": True, "value": convex_to_json(value)}


Client = NpmClient | PypiClient
Connect = Callable[[str], Client]


@pytest.fixture(params=["npm", "pypi"])
def connect(request: pytest.FixtureRequest) -> Connect:
    if request.param == "npm":
        js_dir: Path = request.getfixturevalue("js_client_dir")
        return lambda url: NpmClient(url, js_dir)
    return PypiClient


@pytest.fixture(scope="module")
async def accounts_url(module_serve_app: ServeApp,
                       tmp_path_factory: pytest.TempPathFactory) -> str:
    return await module_serve_app(write_app(tmp_path_factory.mktemp("accounts"), ACCOUNTS_APP))


@pytest.fixture(scope="module")
async def echo_url(module_serve_app: ServeApp, tmp_path_factory: pytest.TempPathFactory) -> str:
    return await module_serve_app(write_app(tmp_path_factory.mktemp("echo"), ECHO_APP))


def ok_values(results: list[Result]) -> list[Any]:
    failed = [r for r in results if not r["ok"]]
    assert not failed, f"calls failed: {failed}"
    return [r["value"] for r in results]


def same_json(a: Any, b: Any) -> bool:
    """Equal JSON, strictly: False is not 0, but 3 and 3.0 are the same JSON number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_plain_error(result: Result, client: Client) -> None:
    """A function failure without ConvexError data: a plain Error / ConvexExecutionError."""
    assert not result["ok"], result
    assert "data" not in result, result
    expected = "Error" if client.name == "npm" else ConvexExecutionError.__name__
    assert result["name"] == expected, result


# --- accounts: open, by_owner, transfer -----------------------------------------------------

def test_open_and_query_by_owner(connect: Connect, accounts_url: str) -> None:
    client = connect(accounts_url)
    owner, big_owner = unique(client.name), unique(client.name)
    big = 2**53 + 3  # not representable as a float64: must stay an exact int64
    new_id, big_id, doc, big_doc, nobody = ok_values(client.run([
        call("mutation", "accounts:open", {"owner": owner, "balance": i64(100)}),
        call("mutation", "accounts:open", {"owner": big_owner, "balance": i64(big)}),
        call("query", "accounts:by_owner", {"owner": owner}),
        call("query", "accounts:by_owner", {"owner": big_owner}),
        call("query", "accounts:by_owner", {"owner": unique("nobody")}),
    ]))
    assert isinstance(new_id, str) and new_id and new_id != big_id
    assert set(doc) == {"_id", "_creationTime", "owner", "balance"}
    assert doc["_id"] == new_id and doc["owner"] == owner
    assert doc["balance"] == i64(100)
    creation = doc["_creationTime"]
    assert isinstance(creation, float | int) and not isinstance(creation, bool)
    assert creation > 1.6e12  # milliseconds since the epoch
    assert big_doc["_id"] == big_id and big_doc["balance"] == i64(big)
    assert nobody is None


def test_transfer(connect: Connect, accounts_url: str) -> None:
    client = connect(accounts_url)
    a, b = unique("a"), unique("b")
    a_id, b_id = ok_values(client.run([
        call("mutation", "accounts:open", {"owner": a, "balance": i64(100)}),
        call("mutation", "accounts:open", {"owner": b, "balance": i64(5)}),
    ]))
    left, doc_a, doc_b = ok_values(client.run([
        call("mutation", "accounts:transfer", {"src": a_id, "dst": b_id, "amount": i64(30)}),
        call("query", "accounts:by_owner", {"owner": a}),
        call("query", "accounts:by_owner", {"owner": b}),
    ]))
    assert left == i64(70)
    assert doc_a["balance"] == i64(70)
    assert doc_b["balance"] == i64(35)


def test_convex_error_reaches_client_with_data(connect: Connect, accounts_url: str) -> None:
    client = connect(accounts_url)
    a, b = unique("a"), unique("b")
    a_id, b_id = ok_values(client.run([
        call("mutation", "accounts:open", {"owner": a, "balance": i64(10)}),
        call("mutation", "accounts:open", {"owner": b, "balance": i64(0)}),
    ]))
    failed, doc_a, doc_b = client.run([
        call("mutation", "accounts:transfer", {"src": a_id, "dst": b_id, "amount": i64(25)}),
        call("query", "accounts:by_owner", {"owner": a}),
        call("query", "accounts:by_owner", {"owner": b}),
    ])
    assert not failed["ok"], failed
    assert failed["name"] == "ConvexError", failed
    assert failed["data"] == {"code": "insufficient_funds", "balance": i64(10)}
    if client.name == "pypi":
        # convex-py's fixed message for object data (http_client.py)
        assert failed["message"] == "Convex error"
    # The failed mutation wrote nothing.
    assert doc_a["ok"] and doc_a["value"]["balance"] == i64(10)
    assert doc_b["ok"] and doc_b["value"]["balance"] == i64(0)


@pytest.mark.parametrize(
    "data",
    [
        "plain message",
        {"code": "bad", "n": i64(-7), "blob": raw(b"\x00\xff"), "x": f64(math.inf)},
        [1.5, None, True],
    ],
    ids=["string", "object", "array"],
)
def test_convex_error_data_shapes(connect: Connect, echo_url: str, data: Any) -> None:
    client = connect(echo_url)
    (result,) = client.run([call("query", "echo:fail_with", {"data": data})])
    assert not result["ok"], result
    assert result["name"] == "ConvexError", result
    assert result["data"] == data
    if isinstance(data, str):
        # Both clients surface string data as the message (npm: errorMessage; PY: data).
        assert data in result["message"]


# --- errors that are not ConvexError --------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "path", "shown"),
    [
        ("query", "accounts:nope", "accounts:nope"),
        ("mutation", "accounts:missing_mutation", "accounts:missing_mutation"),
        ("query", "no_such_module:fn", "no_such_module:fn"),
    ],
    ids=["query", "mutation", "module"],
)
def test_unknown_function_is_named(connect: Connect, accounts_url: str, kind: str,
                                   path: str, shown: str) -> None:
    client = connect(accounts_url)
    (result,) = client.run([call(kind, path)])
    assert_plain_error(result, client)
    assert shown in result["message"], result
    assert "could not find" in result["message"].lower(), result


def test_internal_function_is_not_public(connect: Connect, echo_url: str) -> None:
    client = connect(echo_url)
    (result,) = client.run([call("query", "echo:secret")])
    assert_plain_error(result, client)
    assert "echo:secret" in result["message"], result


def test_path_spellings(connect: Connect, accounts_url: str) -> None:
    client = connect(accounts_url)
    owner = unique("paths")
    new_id, *found = ok_values(client.run([
        call("mutation", "accounts.js:open", {"owner": owner, "balance": i64(3)}),
        call("query", "accounts:by_owner", {"owner": owner}),
        call("query", "accounts.js:by_owner", {"owner": owner}),
    ]))
    assert [doc["_id"] for doc in found] == [new_id, new_id]


@pytest.mark.parametrize("path", ["../escape:fn", "accounts.py:open", ""],
                         ids=["dotdot", "extension", "empty"])
def test_malformed_path_is_a_400_with_code(connect: Connect, accounts_url: str,
                                           path: str) -> None:
    """Not a function failure: 400 {code, message}. npm throws Error(<body text>); PY raises
    Exception("400 <code>: <message>") -- and a KeyError if the body lacked code/message."""
    client = connect(accounts_url)
    (result,) = client.run([call("query", path)])
    assert not result["ok"] and "data" not in result, result
    assert result["name"] == ("Error" if client.name == "npm" else "Exception"), result
    assert "BadConvexFunctionIdentifier" in result["message"], result
    if client.name == "pypi":
        assert result["message"].startswith("400 BadConvexFunctionIdentifier: "), result
    else:
        assert json.loads(result["message"])["code"] == "BadConvexFunctionIdentifier"


def test_wrong_function_kind(connect: Connect, accounts_url: str) -> None:
    client = connect(accounts_url)
    owner = unique("wrong-kind")
    as_query, as_mutation, after = client.run([
        call("query", "accounts:open", {"owner": owner, "balance": i64(1)}),
        call("mutation", "accounts:by_owner", {"owner": owner}),
        call("query", "accounts:by_owner", {"owner": owner}),
    ])
    assert_plain_error(as_query, client)
    assert "accounts:open" in as_query["message"], as_query
    assert "mutation" in as_query["message"].lower(), as_query
    assert_plain_error(as_mutation, client)
    assert "accounts:by_owner" in as_mutation["message"], as_mutation
    assert "query" in as_mutation["message"].lower(), as_mutation
    assert after == {"ok": True, "value": None}  # the mutation did not run as a query


@pytest.mark.parametrize(
    ("path", "args", "field"),
    [
        ("accounts:open", {"owner": "x", "balance": 100}, "balance"),  # float64, not int64
        ("accounts:open", {"owner": 7, "balance": i64(1)}, "owner"),
        ("accounts:open", {"balance": i64(1)}, "owner"),  # missing
        ("accounts:open", {"owner": "x", "balance": i64(1), "bogus": True}, "bogus"),  # extra
        ("accounts:transfer", {"src": "not-an-id", "dst": "nor-this", "amount": i64(1)}, "src"),
    ],
    ids=["float-for-int64", "wrong-type", "missing", "extra", "bad-id"],
)
def test_args_failing_validation_name_the_field(connect: Connect, accounts_url: str, path: str,
                                                args: dict[str, Any], field: str) -> None:
    client = connect(accounts_url)
    owner = unique("invalid")
    args = {**args, "owner": owner} if args.get("owner") == "x" else args
    result, after = client.run([
        call("mutation", path, args),
        call("query", "accounts:by_owner", {"owner": owner}),
    ])
    assert_plain_error(result, client)
    assert field in result["message"], result
    assert after == {"ok": True, "value": None}


# --- values round trips ---------------------------------------------------------------------

ROUND_TRIPS: dict[str, Any] = {
    "int64-zero": i64(0),
    "int64-one": i64(1),
    "int64-minus-one": i64(-1),
    "int64-2^53+1": i64(2**53 + 1),
    "int64-max": i64(2**63 - 1),
    "int64-min": i64(-(2**63)),
    "bytes-empty": raw(b""),
    "bytes-binary": raw(bytes(range(256))),
    "float-nan": f64(math.nan),
    "float-inf": f64(math.inf),
    "float-minus-inf": f64(-math.inf),
    "float-minus-zero": f64(-0.0),
    "float-fraction": 0.1,
    "float-whole": 3.0,
    "float-max": 1.7976931348623157e308,
    "float-denormal": 5e-324,
    "float-2^53": 9007199254740992.0,
    "string": "héllo ☃ \U0001f600 \"quoted\" \\ \n",
    "null": None,
    "bool": False,
    "empty-object": {},
    "empty-array": [],
    "nested": {
        "ints": [i64(5), i64(-5)],
        "bytes": {"b": raw(b"\x00\x01\xfe\xff")},
        "floats": [f64(math.nan), f64(math.inf), f64(-math.inf), 2.5],
        "deep": [[[{"x": [None, True, "s"]}]]],
    },
}


def test_values_round_trip_through_echo_query(connect: Connect, echo_url: str) -> None:
    client = connect(echo_url)
    names = list(ROUND_TRIPS)
    results = client.run([call("query", "echo:echo", {"value": ROUND_TRIPS[n]}) for n in names])
    mismatches = {
        name: (ROUND_TRIPS[name], result)
        for name, result in zip(names, results, strict=True)
        if not result["ok"] or not same_json(result["value"], ROUND_TRIPS[name])
    }
    assert not mismatches, mismatches


def test_values_round_trip_through_echo_action(connect: Connect, echo_url: str) -> None:
    client = connect(echo_url)
    value = {"i": i64(2**63 - 1), "b": raw(b"\x00\xff"), "nan": f64(math.nan), "f": 0.5}
    (result,) = client.run([call("action", "echo:echo_action", {"value": value})])
    assert result == {"ok": True, "value": value}


def test_pypi_native_types(accounts_url: str, echo_url: str) -> None:
    """What a Python caller gets back: ConvexInt64, bytes, float; ConvexError.data stays raw."""
    accounts, echo = ConvexHttpClient(accounts_url), ConvexHttpClient(echo_url)
    a, b = unique("py-a"), unique("py-b")
    big = 2**53 + 1  # not a float64 (and small enough that accounts:total stays an int64)
    a_id = accounts.mutation("accounts:open", {"owner": a, "balance": ConvexInt64(big)})
    b_id = accounts.mutation("accounts:open", {"owner": b, "balance": ConvexInt64(0)})
    doc = accounts.query("accounts:by_owner", {"owner": a})
    assert isinstance(doc["balance"], ConvexInt64) and doc["balance"].value == big
    assert isinstance(doc["_creationTime"], float)
    left = accounts.mutation("accounts:transfer",
                             {"src": a_id, "dst": b_id, "amount": ConvexInt64(1)})
    assert isinstance(left, ConvexInt64) and left.value == big - 1
    with pytest.raises(ConvexError) as caught:
        accounts.mutation("accounts:transfer",
                          {"src": b_id, "dst": a_id, "amount": ConvexInt64(5)})
    # The PyPI HTTP client does not decode errorData: int64 stays {"$integer": ...}.
    assert caught.value.data == {"code": "insufficient_funds", "balance": i64(1)}

    out = echo.query("echo:echo", {"value": {
        "i": ConvexInt64(-(2**63)), "b": b"\x00\xff", "nan": math.nan, "inf": -math.inf,
        "negzero": -0.0, "n": 3,
    }})
    assert isinstance(out["i"], ConvexInt64) and out["i"].value == -(2**63)
    assert out["b"] == b"\x00\xff" and isinstance(out["b"], bytes)
    assert math.isnan(out["nan"]) and out["inf"] == -math.inf
    assert out["negzero"] == 0.0 and math.copysign(1.0, out["negzero"]) == -1.0
    assert out["n"] == 3.0 and isinstance(out["n"], float)  # a Python int travels as float64


# --- consistentQuery (npm only: the PyPI HTTP client has none) -------------------------------

def test_npm_consistent_query(js_client_dir: Path, accounts_url: str) -> None:
    client = NpmClient(accounts_url, js_client_dir)
    x, y = unique("cq-x"), unique("cq-y")
    results = client.run([
        call("mutation", "accounts:open", {"owner": x, "balance": i64(7)}),
        # The client fetches /api/query_ts once and reuses that ts for every consistentQuery.
        call("consistentQuery", "accounts:by_owner", {"owner": x}),
        call("consistentQuery", "accounts:total"),
        call("mutation", "accounts:open", {"owner": y, "balance": i64(11)}),
        call("query", "accounts:by_owner", {"owner": y}),
        call("query", "accounts:total"),
        # Still at the old ts: y did not exist then.
        call("consistentQuery", "accounts:by_owner", {"owner": y}),
        call("consistentQuery", "accounts:by_owner", {"owner": x}),
        call("consistentQuery", "accounts:total"),
        call("function", "accounts:by_owner", {"owner": y}),
    ])
    x_id, x_doc, total_before, y_id, y_doc, total_now = ok_values(results[:6])
    assert x_doc["_id"] == x_id and x_doc["balance"] == i64(7)
    assert y_doc["_id"] == y_id
    assert total_now == i64(_int64(total_before) + 11)

    y_then, x_again, total_then, via_function = results[6:]
    # Reads untouched since the snapshot are answered at it.
    assert x_again == {"ok": True, "value": x_doc}, x_again
    # Reads that changed since: the value they had then, or (this server keeps no old
    # versions) a failure that says so -- never the new value.
    assert_value_at_snapshot(y_then, None)
    assert_value_at_snapshot(total_then, total_before)
    assert via_function == {"ok": True, "value": y_doc}

    # A new client takes a new ts and sees the latest data.
    (fresh,) = client.run([call("consistentQuery", "accounts:total")])
    assert fresh["ok"] and _int64(fresh["value"]) >= _int64(total_now), fresh


def assert_value_at_snapshot(result: Result, then: Any) -> None:
    if result["ok"]:
        assert result["value"] == then, result
    else:
        assert "after the requested timestamp" in result["message"], result


def _int64(encoded: Any) -> int:
    assert isinstance(encoded, dict) and set(encoded) == {"$integer"}, encoded
    value: int = struct.unpack("<q", base64.b64decode(encoded["$integer"]))[0]
    return value
