"""Alloy's rate limit: counted per endpoint per clock minute, in headers on every answer, and
(with ``rate_limit``) enforced with 429s that have no effect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alloysync.fake_alloy import TITLE_ATTRIBUTE, FakeAlloyServer, endpoint_key, load_items
from alloysync.fake_alloy.samples import SAMPLE_ITEMS_PATH
from tests.alloysync.fake_alloy.helpers import ALLOY_TIMESTAMP, API_KEY, assert_alloy_error, query, query_body

pytestmark = pytest.mark.timeout(60)

ITEM, OTHER = "65f0c1a0e4d0a1b2c3d4e501", "65f0c1a0e4d0a1b2c3d4e502"


@pytest.fixture(autouse=True)
def away_from_a_minute_boundary() -> None:
    """Counts restart at each whole minute: start tests with the minute's end at least 5 s away."""
    second = datetime.now(UTC).second
    if second >= 55:
        time.sleep(61 - second)


@pytest.fixture
def limited() -> Iterator[tuple[FakeAlloyServer, httpx.Client]]:
    with (
        FakeAlloyServer(load_items(SAMPLE_ITEMS_PATH), api_key=API_KEY, rate_limit=2) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5) as client,
    ):
        yield server, client


def remaining(response: httpx.Response) -> int:
    return int(response.headers["X-Rate-Limit-Remaining"])


def reset(response: httpx.Response) -> datetime:
    text = response.headers["X-Rate-Limit-Reset"]
    assert ALLOY_TIMESTAMP.match(text)
    return datetime.strptime(text[:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def put_title(http: httpx.Client, server: FakeAlloyServer, item_id: str, title: str) -> httpx.Response:
    signature = (server.get(item_id) or {})["signature"]
    body = {"signature": signature, "attributes": [{"attributeCode": TITLE_ATTRIBUTE, "value": title}]}
    return http.put(f"/api/item/{item_id}", json=body)


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("POST", "/api/aqs/query", "POST /api/aqs/query"),
        ("POST", "/api/aqs/query?page=2&pageSize=100", "POST /api/aqs/query"),
        ("post", "/api/aqs/statistics", "POST /api/aqs/statistics"),
        ("GET", f"/api/item/{ITEM}", "GET /api/item/{id}"),
        ("PUT", f"/api/item/{ITEM}", "PUT /api/item/{id}"),
        ("DELETE", f"/api/item/{ITEM}", "DELETE /api/item/{id}"),
        ("GET", "/api/session/me", "GET /api/session/me"),
        ("GET", "/api/item-log/design/designs_x_1?Since=2026-01-01T00:00:00Z", "GET /api/item-log/design/{code}"),
    ],
)
def test_endpoint_key_names_the_endpoint_not_the_item(method: str, path: str, key: str) -> None:
    assert endpoint_key(method, path) == key


def test_each_endpoint_is_counted_on_its_own(http: httpx.Client) -> None:
    sessions = [remaining(http.get("/api/session/me")) for _ in range(3)]
    queries = [remaining(query(http, query_body())) for _ in range(2)]
    items = [remaining(http.get(f"/api/item/{ITEM}")), remaining(http.get(f"/api/item/{OTHER}"))]

    assert sessions == [99, 98, 97]
    assert queries == [99, 98]
    assert items == [99, 98]  # one endpoint, whichever item


def test_the_reset_is_the_end_of_the_clock_minute(http: httpx.Client) -> None:
    before = datetime.now(UTC)

    response = http.get("/api/session/me")

    end = reset(response)
    assert (end.second, end.microsecond) == (0, 0)
    assert before < end <= before + timedelta(seconds=60)
    assert response.headers["X-Rate-Limit-Reset"].endswith(":00.0000000Z")


def test_a_request_beyond_the_limit_is_refused_and_has_no_effect(
    limited: tuple[FakeAlloyServer, httpx.Client],
) -> None:
    server, http = limited

    first, second = put_title(http, server, ITEM, "one"), put_title(http, server, ITEM, "two")
    third = put_title(http, server, ITEM, "three")

    assert [first.status_code, second.status_code] == [200, 200]
    assert [remaining(first), remaining(second)] == [1, 0]
    assert_alloy_error(third, 429, "RateLimited")
    assert remaining(third) == 0
    assert reset(third) == reset(first)
    titles = [a["value"] for a in (server.get(ITEM) or {})["attributes"] if a["attributeCode"] == TITLE_ATTRIBUTE]
    assert titles == ["two"]
    assert len(server.edits) == 2
    assert server.rate_limited == {"PUT /api/item/{id}": 1}
    assert server.requests[-1] == ("PUT", f"/api/item/{ITEM}", None)  # received, logged, not served


def test_other_endpoints_are_still_served(limited: tuple[FakeAlloyServer, httpx.Client]) -> None:
    server, http = limited
    for _ in range(3):
        http.delete(f"/api/item/{OTHER}")

    assert server.rate_limited == {"DELETE /api/item/{id}": 1}
    assert http.get(f"/api/item/{ITEM}").status_code == 200
    assert query(http, query_body()).status_code == 200
    assert_alloy_error(http.get(f"/api/item/{OTHER}"), 404, "ItemNotFound")  # the first delete was served


def test_a_refused_request_does_not_take_an_injected_fault(limited: tuple[FakeAlloyServer, httpx.Client]) -> None:
    server, http = limited
    http.get("/api/session/me")
    http.get("/api/session/me")
    server.faults.fail_next(1, status=503)

    assert http.get("/api/session/me").status_code == 429
    assert http.get(f"/api/item/{ITEM}").status_code == 503


def test_a_new_window_starts_the_count_again() -> None:
    with (
        FakeAlloyServer(api_key=API_KEY, rate_limit=1, rate_window=1.0) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as http,
    ):
        # Two requests may straddle a window's end: ask until one is refused.
        refused = next(r for r in (http.get("/api/session/me") for _ in range(10)) if r.status_code == 429)
        time.sleep(max(0.0, (reset(refused) - datetime.now(UTC)).total_seconds()) + 0.05)

        assert http.get("/api/session/me").status_code == 200


def test_the_limit_can_be_changed_while_it_runs(server: FakeAlloyServer, http: httpx.Client) -> None:
    assert server.rate_limit is None
    http.get("/api/session/me")

    server.rate_limit = 1

    assert http.get("/api/session/me").status_code == 429
    assert server.rate_limited == {"GET /api/session/me": 1}


def test_without_a_limit_nothing_is_refused(server: FakeAlloyServer, http: httpx.Client) -> None:
    responses = [http.get("/api/session/me") for _ in range(105)]

    assert {response.status_code for response in responses} == {200}
    assert remaining(responses[-1]) == 0
    assert server.rate_limited == {}
