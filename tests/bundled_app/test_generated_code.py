"""The bundled app's generated client code (functions/_generated/): committed, current, and
used as a front end would use it: `tsc` with convex/react, mypy with our Python client, and
at runtime with the official npm client and ours against a real server."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reactive_store.app.codegen import GENERATED_DIR, generate_for, stale_files
from reactive_store.client import connect
from reactive_store.engine.system_tables import readable_system_tables
from tests.typecheck import JS_DIR, mypy, tsc

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / GENERATED_DIR


@pytest.mark.parametrize("python", [False, True], ids=["typescript", "python"])
def test_the_committed_files_are_current(python: bool) -> None:
    files = generate_for(ROOT, python, readable_system_tables())
    flag = " --python" if python else ""
    assert not stale_files(GENERATED, files), (
        f"functions/_generated is stale: run `reactive-store codegen --app .{flag}`")


REACT = """
import { useMutation, useQuery } from "convex/react";
import { api } from "./_generated/api.js";
import type { Doc, Id } from "./_generated/dataModel.js";

export function useChat(sessionId: Id<"chat_sessions">) {
  const messages = useQuery(api.chatMessages.listBySession, { sessionId });
  const session = useQuery(api.chatSessions.get, { sessionId });
  const sessions = useQuery(api.chatSessions.list, { userId: "ada" });
  const append = useMutation(api.chatMessages.append);
  const list: Doc<"chat_messages">[] =
    messages === undefined ? [] : Array.isArray(messages) ? messages : messages.page;
  const texts: string[] = list.map((m) => `${m.role}: ${m.content}`);
  const title: string | undefined = session?.title;
  const count: number = Array.isArray(sessions) ? sessions.length : 0;
  async function send(content: string): Promise<Id<"chat_messages">> {
    return await append({ sessionId, role: "user", content });
  }
  // @ts-expect-error a role outside user | assistant | system
  void append({ sessionId, role: "robot", content: "hi" });
  // @ts-expect-error an id of another table
  void useQuery(api.chatMessages.listBySession, { sessionId: "x" as Id<"work_orders"> });
  // @ts-expect-error userId may be left out, not be null
  void useQuery(api.chatSessions.list, { userId: null });
  return { texts, title, count, send };
}
"""

WRONG = """
import { useQuery } from "convex/react";
import { api } from "./_generated/api.js";

export function useMessages(sessionId: number) {
  return useQuery(api.chatMessages.listBySession, { sessionId });
}
"""


def client_folder(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "_generated").symlink_to(GENERATED, target_is_directory=True)
    (folder / "app.ts").write_text(source)
    return folder


def test_a_react_front_end_type_checks(tmp_path: Path) -> None:
    result = tsc(client_folder(tmp_path, "ok", REACT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_argument_fails_tsc(tmp_path: Path) -> None:
    result = tsc(client_folder(tmp_path, "wrong", WRONG))
    assert result.returncode != 0
    assert "app.ts(6," in result.stdout and "error TS2322: Type 'number' is not assignable to " \
           "type 'Id<\"chat_sessions\">'" in result.stdout, result.stdout


PYTHON_CLIENT = """
from __future__ import annotations

from reactive_store.client import Client

from _generated.api import ChatMessagesDoc, api


async def chat(client: Client, user: str) -> list[str]:
    session = await client.mutation(api.chatSessions.create, {"userId": user, "title": "t"})
    await client.mutation(api.chatMessages.append,
                          {"sessionId": session, "role": "user", "content": "hello"})
    found = await client.query(api.chatMessages.list_by_session, {"sessionId": session})
    messages: list[ChatMessagesDoc] = found if isinstance(found, list) else found["page"]
    await client.mutation(api.chatMessages.append, {
        "sessionId": session, "role": "robot", "content": "x"})  # type: ignore[typeddict-item]
    await client.query(api.chatMessages.list_by_session, {
        "sessionId": "a plain string"})  # type: ignore[typeddict-item]
    return [m["content"] for m in messages]
"""


def test_a_python_client_type_checks(tmp_path: Path) -> None:
    shutil.copytree(GENERATED, tmp_path / "_generated")
    (tmp_path / "chat.py").write_text(PYTHON_CLIENT)
    result = mypy(tmp_path, "chat.py")
    assert result.returncode == 0, result.stdout + result.stderr


def load_generated() -> Any:
    spec = importlib.util.spec_from_file_location("bundled_generated_api", GENERATED / "api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_python_references_call_the_functions(serve: Any) -> None:
    api = load_generated().api
    url, _ = await serve(ROOT)
    async with connect(url) as client:
        session = await client.mutation(api.chatSessions.create, {"userId": "u", "title": "t"})
        await client.mutation(api.chatMessages.append,
                              {"sessionId": session, "role": "user", "content": "hi"})
        messages = await client.query(api.chatMessages.list_by_session, {"sessionId": session})
        assert [m["content"] for m in messages] == ["hi"]
        assert [s["_id"] for s in await client.query(api.chatSessions.list, {})] == [session]


NODE = """
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";

const client = new ConvexHttpClient(process.argv[2]);
const sessionId = await client.mutation(api.chatSessions.create, { userId: "u", title: "t" });
await client.mutation(api.chatMessages.append, { sessionId, role: "user", content: "hello" });
const messages = await client.query(api.chatMessages.listBySession, { sessionId });
const sessions = await client.query(api.chatSessions.list, {});
console.log(JSON.stringify({ contents: messages.map((m) => m.content),
                             sessions: sessions.map((s) => s._id === sessionId) }));
"""


async def test_the_official_client_runs_with_the_generated_api(serve: Any, tmp_path: Path
                                                               ) -> None:
    node = shutil.which("node")
    assert node is not None, "the npm client tests need `node` on PATH"
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules", target_is_directory=True)
    (tmp_path / "_generated").mkdir()
    shutil.copy(GENERATED / "api.js", tmp_path / "_generated" / "api.js")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "chat.mjs").write_text(NODE)
    url, _ = await serve(ROOT)
    process = await asyncio.create_subprocess_exec(
        node, "chat.mjs", url, cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    *logged, result = out.decode().splitlines()  # the client prints function logs first
    assert json.loads(result) == {"contents": ["hello"], "sessions": [True]}
    assert [line.rsplit(" ", 1)[0] for line in logged] == [
        "[CONVEX M(chatMessages:append)] [INFO] appended a user message (5 chars) to session"]
