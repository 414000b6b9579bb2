"""The AQS bodies the client sends, and the count it reads back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from alloysync.client import AlloyClient, AlloyResponseError, ItemQuery
from alloysync.client.aqs import build_count_aqs, build_query_aqs
from alloysync.fake_alloy import SAMPLE_DESIGN_CODE, SAMPLE_FLAG_ATTRIBUTE, FakeAlloyServer
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY, FLAGGED_JOBS, mock_client

pytestmark = pytest.mark.timeout(60)


def test_a_window_combines_the_flag_and_the_last_id_under_one_and_node() -> None:
    root = build_query_aqs(FLAGGED_JOBS, after_item_id="65f0c1a0e4d0a1b2c3d4e509")["aqs"]

    assert root["type"] == "Query"
    assert root["properties"]["dodiCode"] == SAMPLE_DESIGN_CODE
    assert root["properties"]["collectionCode"] == ["Live"]
    assert root["properties"]["sortInfo"] == {"itemProperty": "ItemId", "sortOrder": "Ascending"}
    [and_node] = root["children"]
    assert and_node["type"] == "And"
    equals, greater = and_node["children"]
    assert equals["children"][1] == {"type": "Boolean", "properties": {"value": [True]}}
    assert greater["type"] == "GreaterThan"
    assert greater["children"][1] == {"type": "String", "properties": {"value": ["65f0c1a0e4d0a1b2c3d4e509"]}}


def test_a_query_without_a_flag_has_no_children() -> None:
    assert build_query_aqs(ALL_JOBS)["aqs"]["children"] == []


def test_a_count_of_the_wrong_shape_is_a_response_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": []})

    with mock_client(handler, []) as client, pytest.raises(AlloyResponseError):
        client.count_items(ALL_JOBS)


EDITED_SINCE = datetime(2026, 11, 29, 10, 0, 0, 123_999, tzinfo=UTC)
LAST_EDIT_DATE = {"type": "ItemProperty", "properties": {"itemPropertyName": "lastEditDate"}}


def test_an_incremental_query_selects_items_edited_after_a_time_in_utc_milliseconds() -> None:
    since = EDITED_SINCE.astimezone(timezone(timedelta(hours=2)))  # the same instant, another zone
    query = ItemQuery(SAMPLE_DESIGN_CODE, edited_after=since)

    [greater] = build_query_aqs(query)["aqs"]["children"]

    assert greater == {
        "type": "GreaterThan",
        "children": [LAST_EDIT_DATE, {"type": "DateTime", "properties": {"value": ["2026-11-29T10:00:00.123Z"]}}],
    }


def test_an_incremental_window_combines_edit_time_and_last_id_under_one_and_node_sorted_by_id() -> None:
    query = ItemQuery(SAMPLE_DESIGN_CODE, edited_after=EDITED_SINCE, collections=("Live", "Archive"))

    root = build_query_aqs(query, after_item_id="65f0c1a0e4d0a1b2c3d4e509")["aqs"]

    assert root["properties"]["collectionCode"] == ["Live", "Archive"]
    assert root["properties"]["sortInfo"] == {"itemProperty": "ItemId", "sortOrder": "Ascending"}
    [and_node] = root["children"]
    edited, after_id = and_node["children"]
    assert edited["children"][0] == LAST_EDIT_DATE
    assert after_id["children"][1] == {"type": "String", "properties": {"value": ["65f0c1a0e4d0a1b2c3d4e509"]}}


def test_a_flag_edit_time_and_last_id_all_go_under_one_and_node() -> None:
    query = ItemQuery(SAMPLE_DESIGN_CODE, flag_attribute=SAMPLE_FLAG_ATTRIBUTE, edited_after=EDITED_SINCE)

    [and_node] = build_query_aqs(query, after_item_id="65f0c1a0e4d0a1b2c3d4e509")["aqs"]["children"]

    assert [child["type"] for child in and_node["children"]] == ["Equals", "GreaterThan", "GreaterThan"]


def test_a_count_takes_the_same_collections_and_edit_time() -> None:
    query = ItemQuery(SAMPLE_DESIGN_CODE, edited_after=EDITED_SINCE, collections=("Live", "Archive"))

    root = build_count_aqs(query)["aqs"]

    assert root["type"] == "StatisticsAggregation"
    assert root["properties"] == {
        "dodiCode": SAMPLE_DESIGN_CODE,
        "collectionCode": ["Live", "Archive"],
        "aggregationType": "Count",
    }
    [greater] = root["children"]
    assert greater["children"][1] == {"type": "DateTime", "properties": {"value": ["2026-11-29T10:00:00.123Z"]}}


def test_one_collection_still_works_positionally_as_the_callers_pass_it() -> None:
    query = ItemQuery(SAMPLE_DESIGN_CODE, "Archive", SAMPLE_FLAG_ATTRIBUTE)

    assert build_query_aqs(query)["aqs"]["properties"]["collectionCode"] == ["Archive"]
    assert build_count_aqs(query)["aqs"]["properties"]["collectionCode"] == ["Archive"]


def test_a_naive_edit_time_or_a_string_of_collections_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ItemQuery(SAMPLE_DESIGN_CODE, edited_after=datetime(2026, 11, 29, 10, 0))  # noqa: DTZ001 - the point
    with pytest.raises(TypeError, match="tuple"):
        ItemQuery(SAMPLE_DESIGN_CODE, collections="Live")  # type: ignore[arg-type]


def test_the_fake_alloy_answers_an_incremental_query(server: FakeAlloyServer) -> None:
    since = datetime(2000, 1, 1, tzinfo=UTC)
    query = ItemQuery(SAMPLE_DESIGN_CODE, edited_after=since, collections=("Live", "Archive"))

    with AlloyClient(server.url, API_KEY, page_size=100) as client:
        edited = {item.item_id for item in client.iter_items(query)}
        live = {item.item_id for item in client.iter_items(ALL_JOBS)}

    assert edited == live  # every sample item was stored after 2000
