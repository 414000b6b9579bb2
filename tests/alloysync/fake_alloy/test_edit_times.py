"""Edit times: kept per item (never in the payload), filtered with GreaterThan/LessThan, sorted on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alloysync.fake_alloy import TITLE_ATTRIBUTE, FakeAlloyServer, make_item, parse_alloy_datetime
from tests.alloysync.fake_alloy.helpers import (
    API_KEY,
    assert_alloy_error,
    item_property,
    last_edit,
    query,
    query_body,
    result_ids,
    sorted_by,
    value,
)

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
A, B, C = "a" * 24, "b" * 24, "c" * 24


@pytest.fixture
def timed() -> FakeAlloyServer:
    """Three items edited at T0 - 1h (A), T0 (B) and T0 + 1h (C), on a server with a fixed clock."""
    server = FakeAlloyServer(api_key=API_KEY, clock=lambda: T0 + timedelta(days=1))
    server.put_item(make_item({TITLE_ATTRIBUTE: "a"}, item_id=A), at=T0 - timedelta(hours=1))
    server.put_item(make_item({TITLE_ATTRIBUTE: "b"}, item_id=B), at=T0)
    server.put_item(make_item({TITLE_ATTRIBUTE: "c"}, item_id=C), at=T0 + timedelta(hours=1))
    return server


@pytest.fixture
def timed_http(timed: FakeAlloyServer) -> Iterator[httpx.Client]:
    with timed, httpx.Client(base_url=timed.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5) as client:
        yield client


def test_the_store_keeps_an_edit_time_out_of_the_item(timed: FakeAlloyServer) -> None:
    assert timed.edit_time(B) == T0
    assert timed.edit_time("f" * 24) is None
    item = timed.get(B)
    assert item is not None
    assert "lastEditDate" not in item


def test_edits_moves_and_puts_set_the_edit_time(timed: FakeAlloyServer) -> None:
    later = T0 + timedelta(hours=5)

    timed.edit_item(A, {TITLE_ATTRIBUTE: "renamed"}, at=later)
    timed.edit_item(B, {}, collection="Archive")  # the clock: T0 + 1 day
    item = timed.get(C)
    assert item is not None
    timed.put_item_body(C, {"signature": item["signature"], "attributes": []})

    assert timed.edit_time(A) == later
    assert timed.edit_time(B) == T0 + timedelta(days=1)
    assert (timed.get(B) or {}).get("collection") == "Archive"
    assert timed.edit_time(C) == T0 + timedelta(days=1)


def test_it_refuses_a_naive_edit_time(timed: FakeAlloyServer) -> None:
    with pytest.raises(ValueError, match="aware"):
        timed.edit_item(A, {}, at=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


def test_greater_than_and_less_than_are_strict(timed_http: httpx.Client) -> None:
    at_t0 = "2026-11-29T10:00:00.000Z"

    assert result_ids(query(timed_http, query_body(last_edit("GreaterThan", at_t0)))) == [C]
    assert result_ids(query(timed_http, query_body(last_edit("LessThan", at_t0)))) == [A]
    between = {
        "type": "And",
        "children": [
            last_edit("GreaterThan", "2026-11-29T09:59:59.999999Z"),
            last_edit("LessThan", "2026-11-29T10:00:00.0000001Z"),
        ],
    }
    assert result_ids(query(timed_http, query_body(between))) == [B]


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T10:00:00Z",
        "2026-11-29T10:00:00.0Z",
        "2026-11-29T10:00:00.000Z",
        "2026-11-29T10:00:00.0000000Z",
        "2026-11-29T11:00:00.000+01:00",
        "2026-11-29t10:00:00z",
    ],
)
def test_date_times_are_compared_as_instants_whatever_their_spelling(timed_http: httpx.Client, text: str) -> None:
    assert result_ids(query(timed_http, query_body(last_edit("GreaterThan", text)))) == [C]


@pytest.mark.parametrize(
    "text", ["2026-11-29T10:00:00", "2026-11-29", "2026-11-29T10:00:00.12345678Z", "yesterday", "2026-13-01T00:00:00Z"]
)
def test_it_refuses_a_date_time_it_cannot_read(timed_http: httpx.Client, text: str) -> None:
    assert_alloy_error(query(timed_http, query_body(last_edit("GreaterThan", text))), 400, "AqsInvalidQuery")


def test_the_property_name_is_matched_case_insensitively(timed_http: httpx.Client) -> None:
    node = {"type": "LessThan", "children": [item_property("LASTEDITDATE"), value("DateTime", "2026-11-29T10:00:00Z")]}

    assert result_ids(query(timed_http, query_body(node))) == [A]


def test_it_sorts_by_last_edit_date_with_ties_broken_by_item_id(
    timed: FakeAlloyServer, timed_http: httpx.Client
) -> None:
    timed.put_item(make_item({TITLE_ATTRIBUTE: "tie"}, item_id="0" * 24), at=T0)  # ties with B
    timed.edit_item(A, {TITLE_ATTRIBUTE: "latest"}, at=T0 + timedelta(hours=2))

    ascending = result_ids(query(timed_http, sorted_by(query_body(), "LastEditDate")))
    descending = result_ids(query(timed_http, sorted_by(query_body(), "lastEditDate", "Descending")))

    assert ascending == ["0" * 24, B, C, A]
    assert descending == [A, C, B, "0" * 24]


def test_a_window_read_by_last_edit_date_pages_in_order(timed_http: httpx.Client) -> None:
    body = sorted_by(query_body(last_edit("GreaterThan", "2026-01-01T00:00:00Z")), "LastEditDate")

    pages = [result_ids(query(timed_http, body, page, 2)) for page in (1, 2)]

    assert pages == [[A, B], [C]]


def test_it_refuses_an_unknown_sort(timed_http: httpx.Client) -> None:
    assert_alloy_error(query(timed_http, sorted_by(query_body(), "Title")), 400, "AqsInvalidQuery")


def test_a_cached_query_sees_a_later_edit(timed: FakeAlloyServer, timed_http: httpx.Client) -> None:
    body = query_body(last_edit("GreaterThan", "2026-11-29T10:00:00Z"))
    assert result_ids(query(timed_http, body)) == [C]

    timed.edit_item(A, {}, at=T0 + timedelta(minutes=1))

    assert result_ids(query(timed_http, body)) == [A, C]


def test_equals_on_item_id_matches_any_of_several_values(http: httpx.Client) -> None:
    ids = ["65f0c1a0e4d0a1b2c3d4e503", "65f0c1a0e4d0a1b2c3d4e501", "ffffffffffffffffffffffff"]
    node = {"type": "Equals", "children": [item_property("itemId"), value("String", *ids)]}

    assert result_ids(query(http, query_body(node))) == ["65f0c1a0e4d0a1b2c3d4e501", "65f0c1a0e4d0a1b2c3d4e503"]


def test_or_of_edit_time_and_item_id(timed_http: httpx.Client) -> None:
    node = {
        "type": "Or",
        "children": [
            last_edit("LessThan", "2026-11-29T10:00:00Z"),
            {"type": "Equals", "children": [item_property("ItemId"), value("String", C)]},
        ],
    }

    assert result_ids(query(timed_http, query_body(node))) == [A, C]


def test_a_statistics_count_filters_on_edit_time(timed_http: httpx.Client) -> None:
    body = query_body(last_edit("GreaterThan", "2026-11-29T09:00:00Z"))
    body["aqs"]["type"] = "StatisticsAggregation"
    body["aqs"]["properties"]["aggregationType"] = "Count"

    assert timed_http.post("/api/aqs/statistics", json=body).json()["results"][0]["value"]["value"] == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-16T11:08:08.0232125Z", datetime(2021, 3, 16, 11, 8, 8, 23212, tzinfo=UTC)),
        ("2021-03-16T11:08:08Z", datetime(2021, 3, 16, 11, 8, 8, tzinfo=UTC)),
        ("2021-03-16T11:08:08.5-02:30", datetime(2021, 3, 16, 13, 38, 8, 500000, tzinfo=UTC)),
    ],
)
def test_parse_alloy_datetime_reads_zero_to_seven_fractional_digits(text: str, expected: datetime) -> None:
    assert parse_alloy_datetime(text) == expected
