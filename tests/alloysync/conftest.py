"""Fixtures for sync tests: a fake Alloy over a real socket, and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alloysync.client import AlloyClient
from alloysync.fake_alloy import FakeAlloyServer, sample_alloy_settings
from config.env_secrets import Secret
from tests.alloysync.helpers import API_KEY


@pytest.fixture
def alloy(settings) -> Iterator[FakeAlloyServer]:
    """A running fake Alloy, with Django's ALLOY_* settings pointing at it."""
    with FakeAlloyServer(api_key=API_KEY) as server:
        for name, value in sample_alloy_settings(server.url, API_KEY).items():
            setattr(settings, name, value)
        settings.ALLOY_API_KEY = Secret(API_KEY)  # as config/settings.py holds it
        settings.ALLOY_PAGE_SIZE = 100
        settings.ALLOY_TIMEOUT = 2
        yield server


@pytest.fixture
def fast_client(alloy) -> Iterator[AlloyClient]:
    """A client on the fake whose retry waits are recorded instead of slept."""
    waits: list[float] = []
    with AlloyClient(alloy.url, API_KEY, timeout=1, page_size=100, max_retry_seconds=30, sleep=waits.append) as client:
        client.waits = waits  # type: ignore[attr-defined]
        yield client
