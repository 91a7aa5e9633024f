"""The command line: admin key sources and argument errors."""

from __future__ import annotations

import pytest

from reactive_store.cli import admin_key_from_env, build_parser, settings_from


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"CONVEX_DEPLOY_KEY": "deploy"}, "deploy"),
        ({"CONVEX_DEPLOY_KEY": "deploy", "CONVEX_ADMIN_KEY": "admin"}, "admin"),
        ({"CONVEX_ADMIN_KEY": "admin", "REACTIVE_STORE_ADMIN_KEY": "ours"}, "ours"),
    ],
)
def test_admin_key_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                            expected: str | None) -> None:
    for name in ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert admin_key_from_env() == expected


def test_dev_generates_an_admin_key_and_serve_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY"):
        monkeypatch.delenv(name, raising=False)
    dev = settings_from(build_parser().parse_args(["dev"]))
    serve = settings_from(build_parser().parse_args(["serve"]))
    assert dev.admin_key and dev.admin_key.startswith("dev-") and len(dev.admin_key) > 40
    assert serve.admin_key is None
    explicit = settings_from(build_parser().parse_args(["serve", "--admin-key", "k"]))
    assert explicit.admin_key == "k"


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["launch"])
    assert "invalid choice" in capsys.readouterr().err
