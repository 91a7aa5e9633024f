"""With an identity provider configured, only a session's owner may read or write it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import AUDIENCE, ISSUER, Keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def api(tmp_path: Path, serve: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    keys = Keys(tmp_path)
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    monkeypatch.setenv("AUTH_JWKS", f"file://{keys.path}")
    monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
    url, _ = await serve(ROOT)

    async def call(kind: str, path: str, args: dict[str, Any], user: str | None) -> Any:
        headers = {} if user is None else {"Authorization": "Bearer " + keys.token(sub=user)}
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post(f"/api/{kind}", json={"path": path, "args": args},
                                       headers=headers)
        return response.json()

    return call


async def test_owners_only(api: Any) -> None:
    created = await api("mutation", "chatSessions:create", {"userId": "ada", "title": "t"},
                        "ada")
    session = created["value"]
    forged = await api("mutation", "chatSessions:create", {"userId": "ada", "title": "t"},
                       "bob")
    assert forged["errorData"]["code"] == "forbidden"
    anonymous = await api("query", "chatSessions:list", {}, None)
    assert anonymous["errorData"]["code"] == "unauthenticated"
    mine = await api("query", "chatSessions:list", {}, "ada")
    assert [s["_id"] for s in mine["value"]] == [session]
    assert (await api("query", "chatSessions:list", {}, "bob"))["value"] == []
    ok = await api("mutation", "chatMessages:append", {"sessionId": session, "role": "user",
                                                       "content": "hi"}, "ada")
    assert ok["status"] == "success"
    for kind, path, args in [
        ("mutation", "chatMessages:append", {"sessionId": session, "role": "user",
                                             "content": "intrusion"}),
        ("query", "chatMessages:listBySession", {"sessionId": session}),
        ("query", "chatSessions:get", {"sessionId": session}),
        ("query", "workOrders:listBySession", {"sessionId": session}),
    ]:
        refused = await api(kind, path, args, "bob")
        assert refused["status"] == "error" and refused["errorData"]["code"] == "forbidden"
    listed = await api("query", "chatMessages:listBySession", {"sessionId": session}, "ada")
    assert [m["content"] for m in listed["value"]] == ["hi"]
