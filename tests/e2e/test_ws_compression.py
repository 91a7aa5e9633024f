"""`--ws-compression`: sync sockets are not compressed unless the server is told to (a push
to many sockets would otherwise compress the same frame once per socket)."""

from __future__ import annotations

from pathlib import Path

import pytest
import websockets

from reactive_store.cli.parser import build_parser
from tests.e2e.hostile_support import NOTES_APP
from tests.e2e.servers import ServeApp
from tests.support import write_app


@pytest.fixture
def notes_app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "notes", NOTES_APP)


async def extensions(url: str) -> str | None:
    """What the server accepted of the client's offer (websockets offers permessage-deflate)."""
    async with websockets.connect(url.replace("http", "ws") + "/api/sync") as ws:
        assert ws.response is not None
        return ws.response.headers.get("Sec-WebSocket-Extensions")


async def test_sockets_are_not_compressed_by_default(serve_app: ServeApp,
                                                     notes_app: Path) -> None:
    assert await extensions(await serve_app(notes_app)) is None


async def test_compression_is_negotiated_when_asked_for(serve_app: ServeApp,
                                                        notes_app: Path) -> None:
    url = await serve_app(notes_app, options=("--ws-compression", "on"))
    assert "permessage-deflate" in (await extensions(url) or "")



def test_a_bad_value_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--ws-compression", "maybe"])
    assert "--ws-compression: invalid choice: 'maybe'" in capsys.readouterr().err
