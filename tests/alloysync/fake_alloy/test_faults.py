"""Faults injected into the fake Alloy while it runs."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.fake_alloy.helpers import assert_alloy_error, query, query_body, result_ids

pytestmark = pytest.mark.timeout(60)


def test_fail_next_fails_that_many_requests_then_recovers(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_next(2, status=502)

    statuses = [http.get("/api/session/me").status_code for _ in range(3)]

    assert statuses == [502, 502, 200]


def test_error_rate_answers_that_fraction_with_5xx(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.error_rate = 1.0
    assert all(http.get("/api/session/me").status_code >= 500 for _ in range(5))
    server.faults.error_rate = 0.0
    assert http.get("/api/session/me").status_code == 200


@pytest.mark.parametrize(
    ("header", "retry_after", "has_reset"),
    [("retry-after", "4", True), ("reset", None, True), ("none", None, False)],
)
def test_rate_limit_next_announces_the_wait_as_asked(
    server: FakeAlloyServer, http: httpx.Client, header: str, retry_after: str | None, has_reset: bool
) -> None:
    server.faults.rate_limit_next(1, header=header, seconds=4)

    response = http.get("/api/session/me")

    assert_alloy_error(response, 429, "RateLimited")
    assert response.headers.get("Retry-After") == retry_after
    assert ("X-Rate-Limit-Reset" in response.headers) is has_reset
    assert http.get("/api/session/me").status_code == 200


def test_a_malformed_page_is_not_json(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_page(2, "malformed")

    assert query(http, query_body(), 1, 2).status_code == 200
    broken = query(http, query_body(), 2, 2)

    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert query(http, query_body(), 2, 2).status_code == 200


def test_a_broken_page_breaks_off_mid_body(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_page(1, "broken")

    with pytest.raises(httpx.RemoteProtocolError):
        query(http, query_body(), 1, 5)
    assert len(result_ids(query(http, query_body(), 1, 5))) == 5


def test_fail_page_with_times_none_fails_every_time(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_page(1, 500, times=None)

    assert [query(http, query_body()).status_code for _ in range(3)] == [500, 500, 500]


def test_hang_next_holds_a_request_past_the_client_timeout(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.hang_next(1, seconds=1)

    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/session/me", timeout=0.2)
    assert http.get("/api/session/me", timeout=0.5).status_code == 200


def test_latency_delays_every_answer(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.latency = 0.2
    started = time.monotonic()

    http.get("/api/session/me")
    http.get("/api/session/me")

    assert time.monotonic() - started >= 0.4


def test_clear_removes_every_fault(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.latency = 5
    server.faults.fail_next(5)
    server.faults.rate_limit_next(5)
    server.faults.fail_page(1, "broken", times=None)

    server.faults.clear()

    assert http.get("/api/session/me", timeout=2).status_code == 200
    assert query(http, query_body()).status_code == 200
