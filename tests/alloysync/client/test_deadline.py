"""One deadline per request: ALLOY_TIMEOUT bounds connect, send, headers and body together."""

from __future__ import annotations

import time

import pytest

from alloysync.client import AlloyClient, AlloyUnavailableError
from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY

pytestmark = pytest.mark.timeout(60)


def test_a_body_trickled_a_byte_every_two_seconds_gives_up_at_the_timeout(server: FakeAlloyServer) -> None:
    # Before: httpx's timeout bounds each read, so this answer held the request open for 76 s.
    server.faults.trickle_next(1, interval=2.0)
    started = time.monotonic()

    with (
        AlloyClient(server.url, API_KEY, timeout=3, max_retry_seconds=0) as client,
        pytest.raises(AlloyUnavailableError, match=r"timed out after 3 s"),
    ):
        client.session_me()

    assert time.monotonic() - started < 2 * 3


def test_headers_trickled_a_byte_at_a_time_give_up_at_the_timeout_too(server: FakeAlloyServer) -> None:
    server.faults.trickle_next(1, interval=0.2, headers=True)
    started = time.monotonic()

    with (
        AlloyClient(server.url, API_KEY, timeout=1.5, max_retry_seconds=0) as client,
        pytest.raises(AlloyUnavailableError, match=r"timed out after 1.5 s"),
    ):
        client.session_me()

    assert time.monotonic() - started < 2 * 1.5


def test_a_trickled_answer_is_retried_within_the_budget(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.trickle_next(1, interval=1.0)

    with AlloyClient(server.url, API_KEY, timeout=1, sleep=sleeps.append) as client:
        assert client.count_items(ALL_JOBS) == 13

    assert client.requests_made == 2
    assert len(sleeps) == 1


def test_a_slow_answer_that_ends_within_the_deadline_is_read(server: FakeAlloyServer) -> None:
    server.faults.latency = 0.3
    server.faults.trickle_next(1, interval=0.002)  # ~150 bytes: about 0.3 s more

    with AlloyClient(server.url, API_KEY, timeout=3, max_retry_seconds=0) as client:
        assert "userSession" in client.session_me()
        assert client.count_items(ALL_JOBS) == 13  # and the connection is still good afterwards
