"""The AQS bodies the client sends, and the count it reads back."""

from __future__ import annotations

import httpx
import pytest

from alloysync.client import AlloyResponseError
from alloysync.client.aqs import build_query_aqs
from alloysync.fake_alloy import SAMPLE_DESIGN_CODE
from tests.alloysync.client.helpers import ALL_JOBS, FLAGGED_JOBS, mock_client

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
