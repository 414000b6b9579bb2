"""Fixtures for the Alloy client's tests: the fake Alloy with the sample items, and a client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alloysync.client import AlloyClient
from alloysync.fake_alloy import SAMPLE_ITEMS_PATH, FakeAlloyServer, load_items
from tests.alloysync.client.helpers import API_KEY


@pytest.fixture
def server() -> Iterator[FakeAlloyServer]:
    with FakeAlloyServer(load_items(SAMPLE_ITEMS_PATH), api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    """Waits the client asked for; nothing really sleeps."""
    return []


@pytest.fixture
def client(server: FakeAlloyServer, sleeps: list[float]) -> Iterator[AlloyClient]:
    with AlloyClient(server.url, API_KEY, timeout=2.0, page_size=2, sleep=sleeps.append) as alloy:
        yield alloy
