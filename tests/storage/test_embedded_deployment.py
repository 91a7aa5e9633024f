"""A deployment with no database URL runs on the embedded Postgres in APP/.reactive-store/."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactive_store.cli import main
from reactive_store.deployment import Deployment, Settings
from tests.support import ACCOUNTS_APP, write_app


async def test_embedded_deployment_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", ACCOUNTS_APP)
    first = Deployment(Settings(app_dir=app, database_url=None))
    engine = await first.start()
    try:
        assert "embedded PostgreSQL" in first.database_label
        outcome = await engine.run_mutation("accounts:open", {"owner": "ann", "balance": 3})
        assert outcome.ts is not None and outcome.ts > 0
    finally:
        await first.stop()
    assert (app / ".reactive-store" / "pgdata").is_dir()
    second = Deployment(Settings(app_dir=app, database_url=None))
    engine = await second.start()
    try:
        found = await engine.run_query("accounts:by_owner", {"owner": "ann"})
        assert found.value["balance"] == 3
        later = await engine.run_mutation("accounts:open", {"owner": "bob", "balance": 1})
        assert later.ts is not None and outcome.ts is not None and later.ts > outcome.ts
    finally:
        await second.stop()


def test_cli_run_on_the_embedded_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = write_app(tmp_path / "app", ACCOUNTS_APP)
    assert main(["run", "--app", str(app), "accounts:open",
                 '{"owner": "cli", "balance": 4}']) == 0
    assert main(["run", "--app", str(app), "accounts:total"]) == 0
    assert capsys.readouterr().out.strip().endswith('"4"')
    assert main(["run", "--app", str(app), "nope:fn", "{}"]) == 1
    assert "Could not find function for 'nope:fn'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="ARGS must be a JSON object"):
        main(["run", "--app", str(app), "accounts:total", "[1]"])
    with pytest.raises(SystemExit, match="not valid JSON"):
        main(["run", "--app", str(app), "accounts:total", "{oops"])
