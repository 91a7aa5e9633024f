"""Fixtures of the snapshot tests: the library app deployed on the test database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from tests.snapshot.library_app import FILES


@pytest.fixture
async def library(make_app: Callable[..., Path], deploy: Callable[..., Any]) -> Engine:
    engine: Engine = await deploy(make_app(FILES))
    return engine


@pytest.fixture
def fresh_library(make_app: Callable[..., Path], deploy: Callable[..., Any]
                  ) -> Callable[[], Any]:
    """Another deployment of the same app, in its own (empty) namespace."""
    async def start() -> Engine:
        engine: Engine = await deploy(make_app(FILES))
        return engine

    return start
