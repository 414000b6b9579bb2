"""The fake Alloy as a server: loopback only, its URL, stopping, the key, the request log."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from alloysync.fake_alloy.server import FakeAlloyServer
from tests.alloysync.fake_alloy.helpers import API_KEY, assert_alloy_error, query, query_body

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org", ""])  # noqa: S104
def test_it_refuses_a_non_loopback_host(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeAlloyServer(api_key=API_KEY, host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_it_accepts_loopback_hosts(host: str) -> None:
    FakeAlloyServer(api_key=API_KEY, host=host)  # not started: ::1 may not exist in a container


def test_its_url_names_the_port_it_got() -> None:
    with FakeAlloyServer(api_key=API_KEY) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert not server.url.endswith(":0")
    with pytest.raises(RuntimeError):
        _ = server.url


def test_stop_does_not_wait_for_a_held_request(server: FakeAlloyServer) -> None:
    server.faults.hang_next(1, seconds=30)

    outcomes: list[str] = []

    def held_request() -> None:
        try:
            httpx.get(f"{server.url}/api/session/me", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        except httpx.HTTPError as exc:
            outcomes.append(type(exc).__name__)

    thread = threading.Thread(target=held_request)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=10)

    assert time.monotonic() - started < 3
    assert not thread.is_alive()
    assert outcomes == ["RemoteProtocolError"]  # hung up on, not answered


def test_it_requires_the_bearer_key(server: FakeAlloyServer) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        assert_alloy_error(anonymous.get("/api/session/me"), 401, "UserUnauthorized")
        wrong = anonymous.get("/api/session/me", headers={"Authorization": "Bearer not-the-key"})
        assert_alloy_error(wrong, 401, "UserUnauthorized")
        # The old ways were switched off in 2025.
        assert_alloy_error(anonymous.get("/api/session/me", params={"token": API_KEY}), 401, "UserUnauthorized")
        assert_alloy_error(anonymous.get("/api/session/me", headers={"Token": API_KEY}), 401, "UserUnauthorized")


def test_session_me_answers_with_a_user_session(http: httpx.Client) -> None:
    response = http.get("/api/session/me")

    assert response.status_code == 200
    assert response.json()["userSession"]["customerCode"]


def test_it_logs_every_request_with_its_page(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_next(1)
    query(http, query_body(), 3, 2)
    http.get("/api/item/65f0c1a0e4d0a1b2c3d4e501")

    assert server.requests == [
        ("POST", "/api/aqs/query", 3),
        ("GET", "/api/item/65f0c1a0e4d0a1b2c3d4e501", None),
    ]
