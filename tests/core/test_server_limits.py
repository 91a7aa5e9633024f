"""ServerLimits: documented defaults, overridden by REACTIVE_STORE_LIMIT_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactive_store.limits import MIB, ServerLimits
from reactive_store.values import MAX_NESTING_DEPTH

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_defaults() -> None:
    limits = ServerLimits()
    assert limits.request_body_bytes == 16 * MIB
    assert limits.subscriptions_per_socket == 1_000
    assert limits.sockets_per_address == 128
    assert limits.queued_bytes_per_socket == 16 * MIB
    assert limits.finished_jobs_retention_s == 7 * 86_400


def test_environment_overrides() -> None:
    limits = ServerLimits.from_env({
        "REACTIVE_STORE_LIMIT_SOCKETS_PER_ADDRESS": "512",
        "REACTIVE_STORE_LIMIT_STALLED_SOCKET_SECONDS": "2.5",
        "REACTIVE_STORE_LIMIT_REQUEST_BODY_BYTES": "1_048_576",
        "REACTIVE_STORE_LIMIT_SUBSCRIPTIONS_PER_SOCKET": " ",
        "UNRELATED": "1",
    })
    assert limits == ServerLimits(sockets_per_address=512, stalled_socket_seconds=2.5,
                                  request_body_bytes=MIB)
    assert isinstance(limits.sockets_per_address, int)


@pytest.mark.parametrize("text", ["lots", "-1", "1.5"])
def test_bad_values_name_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="REACTIVE_STORE_LIMIT_SOCKETS_PER_ADDRESS"):
        ServerLimits.from_env({"REACTIVE_STORE_LIMIT_SOCKETS_PER_ADDRESS": text})


def test_zero_means_no_limit() -> None:
    assert not ServerLimits.exceeded(10**9, 0)
    assert ServerLimits.exceeded(129, 128)
    assert not ServerLimits.exceeded(128, 128)


def test_every_limit_is_documented() -> None:
    text = DOCS.read_text()
    assert ServerLimits.ENV_PREFIX in text
    for name in ServerLimits.__dataclass_fields__:
        assert f"`{name.upper()}`" in text, name
    assert f"{MAX_NESTING_DEPTH} levels" in text
