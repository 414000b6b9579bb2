"""The item log (``GET /api/item-log/design/{code}``): optional, events strictly after Since, paged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alloysync.fake_alloy import SAMPLE_DESIGN_CODE, TITLE_ATTRIBUTE, FakeAlloyServer, make_item
from tests.alloysync.fake_alloy.helpers import ALLOY_TIMESTAMP, API_KEY, assert_alloy_error

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
LOG = f"/api/item-log/design/{SAMPLE_DESIGN_CODE}"
OTHER_DESIGN = "designs_other_65f0c0ffee0000000000ffff"


@pytest.fixture
def logged() -> Iterator[tuple[FakeAlloyServer, httpx.Client]]:
    """A server with the item log on and, at T0 + 1..5 minutes: create A, create B, edit A, delete B,
    then create an item of another design."""
    server = FakeAlloyServer(api_key=API_KEY, item_log=True)
    minutes = iter(range(1, 10))
    server.clock = lambda: T0 + timedelta(minutes=next(minutes))
    server.put_item(make_item({TITLE_ATTRIBUTE: "a"}, item_id="a" * 24))
    server.put_item(make_item({TITLE_ATTRIBUTE: "b"}, item_id="b" * 24))
    server.edit_item("a" * 24, {TITLE_ATTRIBUTE: "a2"})
    server.remove_item("b" * 24)
    server.put_item(make_item({TITLE_ATTRIBUTE: "x"}, item_id="c" * 24, design_code=OTHER_DESIGN))
    with server, httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield server, client


def actions(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(entry["itemId"][0], entry["action"]) for entry in response.json()["results"]]


def test_it_is_off_by_default_like_an_unknown_endpoint(http: httpx.Client) -> None:
    assert_alloy_error(http.get(LOG, params={"Since": "2020-01-01T00:00:00Z"}), 404, "ResourceNotFound")


def test_it_lists_a_designs_events_oldest_first_in_alloys_shape(logged: tuple[FakeAlloyServer, httpx.Client]) -> None:
    _, http = logged

    response = http.get(LOG, params={"Since": "2026-11-29T10:00:00Z", "Page": 1, "PageSize": 100})

    assert actions(response) == [("a", "Create"), ("b", "Create"), ("a", "Edit"), ("b", "Delete")]
    body = response.json()
    assert (body["page"], body["pageSize"]) == (1, 100)
    first = body["results"][0]
    assert first == {
        "itemId": "a" * 24,
        "designCode": SAMPLE_DESIGN_CODE,
        "action": "Create",
        "date": "2026-11-29T10:01:00.0000000Z",
        "username": "fake.alloy.user",
        "causes": [],
    }
    assert all(ALLOY_TIMESTAMP.match(entry["date"]) for entry in body["results"])


def test_since_is_strict(logged: tuple[FakeAlloyServer, httpx.Client]) -> None:
    _, http = logged

    assert actions(http.get(LOG, params={"Since": "2026-11-29T10:03:00.000Z"})) == [("b", "Delete")]
    assert actions(http.get(LOG, params={"Since": "2026-11-29T10:04:00.0000000Z"})) == []


def test_it_pages_from_page_1(logged: tuple[FakeAlloyServer, httpx.Client]) -> None:
    _, http = logged
    since = "2026-11-29T10:00:00Z"

    pages = [actions(http.get(LOG, params={"Since": since, "Page": page, "PageSize": 3})) for page in (1, 2, 3)]

    assert pages == [[("a", "Create"), ("b", "Create"), ("a", "Edit")], [("b", "Delete")], []]


def test_parameter_names_are_case_insensitive(logged: tuple[FakeAlloyServer, httpx.Client]) -> None:
    _, http = logged

    assert actions(http.get(LOG, params={"since": "2026-11-29T10:02:00Z", "page": 1, "pagesize": 1})) == [("a", "Edit")]


def test_it_lists_only_the_designs_own_events(logged: tuple[FakeAlloyServer, httpx.Client]) -> None:
    _, http = logged

    assert actions(http.get(f"/api/item-log/design/{OTHER_DESIGN}")) == [("c", "Create")]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (LOG, {"Since": "yesterday"}),
        (LOG, {"Since": "2026-11-29T10:00:00"}),  # naive
        (LOG, {"Page": -1}),
        ("/api/item-log/design/designs_missing_65f0c0ffee0000000000eeee", {}),
    ],
)
def test_it_refuses_bad_parameters(
    logged: tuple[FakeAlloyServer, httpx.Client], path: str, params: dict[str, str | int]
) -> None:
    _, http = logged

    assert_alloy_error(http.get(path, params=params), 400, "ModelValidationFailed")
