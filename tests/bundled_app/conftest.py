"""The repository's bundled app, deployed in a fresh namespace for each test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def app(deploy: Any) -> Any:
    return await deploy(ROOT)
