"""The rate-limit and retry policy: waits asked for, backoff, budgets, what is retried."""

from __future__ import annotations

import email.utils
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alloysync.client import (
    UNREACHED_RETRY_SECONDS,
    AlloyClient,
    AlloyResponseError,
    AlloyUnavailableError,
    AlloyUnreachableError,
)
from alloysync.client.policy import MAX_WAIT_SECONDS, parse_alloy_timestamp
from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY, error_body, mock_client, query_pages

pytestmark = pytest.mark.timeout(60)


def test_it_waits_for_retry_after_on_429(server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]) -> None:
    server.faults.rate_limit_next(1, header="retry-after", seconds=7)

    assert client.count_items(ALL_JOBS) == 13
    assert sleeps == [7.0]
    assert client.requests_made == 2


def test_it_waits_until_x_rate_limit_reset_on_429(
    server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]
) -> None:
    server.faults.rate_limit_next(1, header="reset", seconds=3)

    assert client.count_items(ALL_JOBS) == 13
    [wait] = sleeps
    assert 2.0 < wait <= 3.0


def test_it_backs_off_on_429_without_hints(server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]) -> None:
    server.faults.rate_limit_next(2, header="none")

    assert client.count_items(ALL_JOBS) == 13
    first, second = sleeps
    assert 1.0 <= first <= 2.0
    assert 2.0 <= second <= 3.0


def test_it_reads_retry_after_as_an_http_date() -> None:
    responses = iter(
        [
            httpx.Response(
                429,
                headers={
                    "Retry-After": email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
                },
                json=error_body(429, "RateLimited", "slow down"),
            ),
            httpx.Response(200, json={"userSession": {}}),
        ]
    )
    sleeps: list[float] = []

    with mock_client(lambda request: next(responses), sleeps) as client:
        client.session_me()

    [wait] = sleeps
    assert 28.0 <= wait <= 31.0


def test_a_retry_after_longer_than_the_longest_wait_is_capped() -> None:
    responses = iter(
        [
            httpx.Response(429, headers={"Retry-After": "90"}),
            httpx.Response(200, json={"userSession": {}}),
        ]
    )
    sleeps: list[float] = []

    with mock_client(lambda request: next(responses), sleeps) as client:
        client.session_me()

    assert sleeps == [MAX_WAIT_SECONDS]


def test_it_reads_alloy_timestamps_with_seven_fractional_digits() -> None:
    assert parse_alloy_timestamp("2021-03-16T11:08:08.0232125Z") == datetime(2021, 3, 16, 11, 8, 8, 23212, UTC)
    assert parse_alloy_timestamp("2021-03-16T11:08:08Z") == datetime(2021, 3, 16, 11, 8, 8, tzinfo=UTC)
    assert parse_alloy_timestamp("2021-03-16T12:08:08.5+01:00") == datetime(2021, 3, 16, 11, 8, 8, 500000, UTC)
    assert parse_alloy_timestamp("2021-13-16T11:08:08Z") is None
    assert parse_alloy_timestamp("soon") is None


def test_it_retries_5xx_then_succeeds(server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]) -> None:
    server.faults.fail_next(2, status=503)

    assert client.count_items(ALL_JOBS) == 13
    assert client.requests_made == 3
    assert len(sleeps) == 2
    assert sleeps[0] < sleeps[1]


def test_it_gives_up_on_5xx_after_the_retry_budget(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.fail_next(1000, status=502)
    started = time.monotonic()

    with (
        AlloyClient(server.url, API_KEY, max_retry_seconds=10, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnavailableError) as caught,
    ):
        client.session_me()

    error = caught.value
    assert time.monotonic() - started < 5
    assert sum(sleeps) <= 10
    assert error.attempts == client.requests_made == len(sleeps) + 1
    assert 2 <= error.attempts <= 6
    assert f"{error.attempts} attempts over" in error.message
    assert "HTTP 502" in error.message
    assert error.status_code == 502
    assert not error.permanent


def test_it_retries_a_timeout_then_succeeds(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.hang_next(1, seconds=3)
    started = time.monotonic()

    with AlloyClient(server.url, API_KEY, timeout=0.3, sleep=sleeps.append) as client:
        assert client.count_items(ALL_JOBS) == 13

    assert client.requests_made == 2
    assert len(sleeps) == 1
    assert time.monotonic() - started < 2.5


def test_it_gives_up_on_timeouts_after_the_retry_budget(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.hang_next(100, seconds=5)

    with (
        AlloyClient(server.url, API_KEY, timeout=0.2, max_retry_seconds=3, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnavailableError, match=r"timed out after 0\.2 s"),
    ):
        client.session_me()


def test_it_retries_a_page_that_breaks_off(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.fail_page(2, "broken")

    ids = [item.item_id for item in client.iter_items(ALL_JOBS)]

    assert len(ids) == 13
    assert query_pages(server) == [1, 2, 2, 3, 4, 5, 6, 7]


def test_it_retries_a_page_answered_with_500(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.fail_page(3, 500, times=2)

    assert len(list(client.iter_items(ALL_JOBS))) == 13
    assert query_pages(server).count(3) == 3


def test_a_malformed_json_page_is_a_response_error_without_retries(
    server: FakeAlloyServer, client: AlloyClient
) -> None:
    server.faults.fail_page(2, "malformed")

    with pytest.raises(AlloyResponseError, match="not JSON") as caught:
        list(client.iter_items(ALL_JOBS))

    assert caught.value.permanent
    assert query_pages(server) == [1, 2]


def test_a_refused_connection_to_a_host_never_reached_is_retried_briefly_then_unreachable(
    sleeps: list[float],
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with (
        AlloyClient(f"http://127.0.0.1:{port}", API_KEY, max_retry_seconds=120, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnreachableError, match=f"127.0.0.1:{port}: the connection was refused") as caught,
    ):
        client.session_me()
    assert client.requests_made >= 2
    assert sum(sleeps) <= UNREACHED_RETRY_SECONDS  # not the 120 s budget: a wrong port is likelier than an outage
    assert "Check ALLOY_BASE_URL" in caught.value.message
