"""The core's fast tier: the real Service, pipeline and catalog over an in-process fake server."""

from __future__ import annotations

import pytest

from adapter.config import Settings, load_settings
from adapter.service import Service
from tests.core.fakes import FakeModelServer, fake_pool


@pytest.fixture
def core_settings() -> Settings:
    """The demo registry, with quick retries so failure tests stay fast."""
    return load_settings({"ADAPTER_RETRY_BACKOFF_MS": "1", "ADAPTER_BREAKER_FAILURES": "50"})


@pytest.fixture
def server() -> FakeModelServer:
    return FakeModelServer()


@pytest.fixture
def service(core_settings: Settings, server: FakeModelServer) -> Service:
    return Service(core_settings, fake_pool(core_settings, server))
