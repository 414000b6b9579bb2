"""Fixtures for the fake Alloy's tests: a server with the sample items, a plain httpx client on it, and a
webhook receiver for workflows."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from alloysync.fake_alloy import SAMPLE_ITEMS_PATH, FakeAlloyServer, load_items
from tests.alloysync.fake_alloy.helpers import API_KEY, Receiver


@pytest.fixture
def server() -> Iterator[FakeAlloyServer]:
    with FakeAlloyServer(load_items(SAMPLE_ITEMS_PATH), api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def http(server: FakeAlloyServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a loopback port, serving from a daemon thread."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
