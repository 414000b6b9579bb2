"""Faults injected into the fake Alloy while it runs."""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

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


def test_retry_after_can_be_any_text_on_429_and_5xx(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_next(1, status=503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # failures come first
    server.faults.rate_limit_next(1, retry_after="-1")
    server.faults.rate_limit_next(1, header="none", retry_after="NaN")

    unavailable, with_reset, alone = (http.get("/api/session/me") for _ in range(3))

    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "Wed, 21 Oct 2015 07:28:00 GMT")
    assert (with_reset.status_code, with_reset.headers["Retry-After"]) == (429, "-1")
    assert "X-Rate-Limit-Reset" in with_reset.headers
    assert (alone.headers["Retry-After"], "X-Rate-Limit-Reset" in alone.headers) == ("NaN", False)
    assert "Retry-After" not in http.get("/api/session/me").headers


def test_trickle_next_sends_the_body_a_byte_at_a_time(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.trickle_next(1, interval=0.01)
    started = time.monotonic()

    with http.stream("GET", "/api/session/me") as response:
        headers_after = time.monotonic() - started
        chunks = list(response.iter_raw())

    assert headers_after < 0.5
    assert len(chunks) > 10  # one read per byte or few
    assert time.monotonic() - started >= 0.01 * len(b"".join(chunks)) * 0.8
    assert json.loads(b"".join(chunks))["userSession"]


def test_trickle_next_with_headers_holds_back_the_status_line_too(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.trickle_next(1, interval=0.003, headers=True)
    started = time.monotonic()

    with http.stream("GET", "/api/session/me") as response:
        assert time.monotonic() - started >= 0.5  # ~300 bytes of status line and headers
        response.read()


def inflated_size(data: bytes, stop_after: int) -> int:
    """How many bytes gzip ``data`` inflates to, counting a MiB at a time and stopping past ``stop_after``."""
    decoder, total, pending = zlib.decompressobj(zlib.MAX_WBITS | 16), 0, data
    while pending and total <= stop_after:
        total += len(decoder.decompress(pending, 1024 * 1024))
        pending = decoder.unconsumed_tail
    return total


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("deep", lambda body, headers: body.count(b"[") > 100_000),
        ("huge-number", lambda body, headers: b"9" * 5000 in body),
        ("nan", lambda body, headers: b"NaN" in body),
        ("oversize", lambda body, headers: len(body) > 40 * 1024 * 1024),
        (
            "gzip-bomb",
            lambda body, headers: (
                headers["Content-Encoding"] == "gzip"
                and len(body) < 1024 * 1024
                and inflated_size(body, 300 * 1024 * 1024) >= 300 * 1024 * 1024
            ),
        ),
    ],
)
def test_hostile_pages_are_what_they_say(server: FakeAlloyServer, http: httpx.Client, fault: str, check: Any) -> None:
    server.faults.fail_page(1, fault)

    with http.stream("POST", "/api/aqs/query", params={"page": 1, "pageSize": 2}, json=query_body()) as response:
        body = b"".join(response.iter_raw())

    assert response.status_code == 200
    assert check(body, response.headers)
    assert len(result_ids(query(http, query_body(), 1, 2))) == 2  # once only


def test_gzip_compresses_answers_for_clients_that_accept_it(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.gzip = True

    compressed = http.get("/api/session/me", headers={"Accept-Encoding": "gzip"})
    plain = http.get("/api/session/me", headers={"Accept-Encoding": "identity"})

    assert compressed.headers["Content-Encoding"] == "gzip"
    assert compressed.json() == plain.json()
    assert "Content-Encoding" not in plain.headers
