"""The fake Alloy's AQS interpreter, spoken to over HTTP: conditions, collections, refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from alloysync.fake_alloy import SAMPLE_FLAG_ATTRIBUTE, TITLE_ATTRIBUTE, FakeAlloyServer, make_item
from tests.alloysync.fake_alloy.helpers import (
    assert_alloy_error,
    attribute,
    item_property,
    query,
    query_body,
    result_ids,
    value,
)

pytestmark = pytest.mark.timeout(60)


def test_it_filters_on_a_boolean_attribute(http: httpx.Client) -> None:
    flagged = query(
        http, query_body({"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", True)]})
    )
    unflagged = query(
        http, query_body({"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", False)]})
    )

    assert len(result_ids(flagged)) == 12
    assert result_ids(unflagged) == ["65f0c1a0e4d0a1b2c3d4e50d"]


def test_it_evaluates_and_or_equals_and_greater_than(http: httpx.Client) -> None:
    after = {"type": "GreaterThan", "children": [item_property("ITEMID"), value("String", "65f0c1a0e4d0a1b2c3d4e509")]}
    titled = {
        "type": "Or",
        "children": [
            {"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("String", "Hourly asset sync")]},
            {"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("String", "Broken: unknown function")]},
        ],
    }

    assert result_ids(query(http, query_body(after))) == [f"65f0c1a0e4d0a1b2c3d4e50{c}" for c in "abcd"]
    assert result_ids(query(http, query_body(titled))) == ["65f0c1a0e4d0a1b2c3d4e504", "65f0c1a0e4d0a1b2c3d4e50b"]
    assert result_ids(query(http, query_body({"type": "And", "children": [after, titled]}))) == [
        "65f0c1a0e4d0a1b2c3d4e50b"
    ]


def test_it_takes_collection_code_as_a_string_or_a_list(server: FakeAlloyServer, http: httpx.Client) -> None:
    archived = server.put_item(make_item({TITLE_ATTRIBUTE: "old"}, collection="Archive"))

    assert archived["itemId"] not in result_ids(query(http, query_body(collection="Live")))
    assert result_ids(query(http, query_body(collection="Archive"))) == [archived["itemId"]]
    assert archived["itemId"] in result_ids(query(http, query_body(collection=["Live", "Archive"])))


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Query"},
        {"aqs": {"type": "Query", "properties": {}}},
        query_body({"type": "Near", "children": []}),
        query_body({"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE)]}),
        query_body({"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("Boolean", "yes")]}),
        query_body(collection=["Nowhere"]),
        {
            "aqs": {
                **query_body()["aqs"],
                "children": [
                    {"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", True)]},
                    {"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("String", "x")]},
                ],
            }
        },
    ],
    ids=["no-aqs", "no-design", "unknown-node", "one-operand", "wrong-value-type", "bad-collection", "two-roots"],
)
def test_it_rejects_malformed_queries(http: httpx.Client, body: dict[str, Any]) -> None:
    assert_alloy_error(query(http, body), 400, "AqsInvalidQuery")
