"""The fake Alloy's items: paging, counts, reads and edits with signatures, as docs/alloy-api.md says."""

from __future__ import annotations

import httpx
import pytest

from alloysync.fake_alloy import (
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_FLAG_ATTRIBUTE,
    TITLE_ATTRIBUTE,
    FakeAlloyServer,
    make_item,
)
from tests.alloysync.fake_alloy.helpers import (
    ERROR_FIELDS,
    HEX24,
    assert_alloy_error,
    attribute,
    query,
    query_body,
    result_ids,
    value,
)

pytestmark = pytest.mark.timeout(60)


def test_it_pages_by_item_id_from_page_1(server: FakeAlloyServer, http: httpx.Client) -> None:
    all_ids = sorted(item["itemId"] for item in server.items)

    first, last = query(http, query_body(), 1, 5), query(http, query_body(), 3, 5)

    assert first.json()["page"] == 1
    assert first.json()["pageSize"] == 5
    assert result_ids(first) == all_ids[:5]
    assert result_ids(last) == all_ids[10:]
    assert result_ids(query(http, query_body(), 4, 5)) == []


def test_it_refuses_page_101(http: httpx.Client) -> None:
    assert query(http, query_body(), 100, 1).status_code == 200

    assert_alloy_error(query(http, query_body(), 101, 1), 400, "AqsInvalidQuery")


def test_it_refuses_an_unknown_design(http: httpx.Client) -> None:
    response = query(http, query_body(design="designs_typo_65f0c0ffee0000000000ffff"))

    assert_alloy_error(response, 400, "AqsInvalidQuery")
    assert "does not exist" in response.json()["message"]


def test_it_counts_with_a_statistics_aggregation(http: httpx.Client) -> None:
    flag = {"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", True)]}
    body = query_body(flag)
    body["aqs"]["type"] = "StatisticsAggregation"
    body["aqs"]["properties"]["aggregationType"] = "Count"

    response = http.post("/api/aqs/statistics", json=body)

    assert response.status_code == 200
    assert response.json()["results"][0]["value"]["value"] == 12


def test_it_returns_an_item_wrapped_in_item(http: httpx.Client) -> None:
    response = http.get("/api/item/65f0c1a0e4d0a1b2c3d4e501")

    assert response.status_code == 200
    assert response.json()["item"]["signature"] == "64149c300a618a0370228fc4"
    assert_alloy_error(http.get("/api/item/ffffffffffffffffffffffff"), 404, "ItemNotFound")


def test_a_put_with_the_current_signature_edits_only_the_listed_attributes(http: httpx.Client) -> None:
    before = http.get("/api/item/65f0c1a0e4d0a1b2c3d4e501").json()["item"]

    response = http.put(
        "/api/item/65f0c1a0e4d0a1b2c3d4e501",
        json={
            "collection": "Live",
            "signature": before["signature"],
            "attributes": [{"attributeCode": TITLE_ATTRIBUTE, "value": "Renamed"}],
        },
    )

    after = response.json()["item"]
    assert response.status_code == 200
    assert HEX24.match(after["signature"])
    assert after["signature"] != before["signature"]
    assert {a["attributeCode"]: a["value"] for a in after["attributes"]} == {
        **{a["attributeCode"]: a["value"] for a in before["attributes"]},
        TITLE_ATTRIBUTE: "Renamed",
    }


def test_a_put_with_a_stale_signature_is_a_409(server: FakeAlloyServer, http: httpx.Client) -> None:
    stale = server.get("65f0c1a0e4d0a1b2c3d4e501")
    assert stale is not None
    server.edit_item(stale["itemId"], {"attributes_itemsSubtitle": "someone else"})

    response = http.put(
        f"/api/item/{stale['itemId']}", json={"collection": "Live", "signature": stale["signature"], "attributes": []}
    )

    assert_alloy_error(response, 409, "ItemSignatureMismatch")


@pytest.mark.parametrize("context", ["Core", "Module"])
def test_core_and_module_items_cannot_be_edited(server: FakeAlloyServer, http: httpx.Client, context: str) -> None:
    item = server.put_item(make_item({TITLE_ATTRIBUTE: "system"}, context=context))

    response = http.put(f"/api/item/{item['itemId']}", json={"signature": item["signature"], "attributes": []})

    assert response.status_code == 403
    assert set(response.json()) == ERROR_FIELDS


def test_edit_item_changes_the_signature_and_remove_item_deletes(server: FakeAlloyServer, http: httpx.Client) -> None:
    before = server.get("65f0c1a0e4d0a1b2c3d4e502")
    assert before is not None

    edited = server.edit_item("65f0c1a0e4d0a1b2c3d4e502", {SAMPLE_CRON_ATTRIBUTE: "*/7 * * * *", TITLE_ATTRIBUTE: None})

    assert HEX24.match(edited["signature"])
    assert edited["signature"] != before["signature"]
    codes = {a["attributeCode"]: a["value"] for a in edited["attributes"]}
    assert codes[SAMPLE_CRON_ATTRIBUTE] == "*/7 * * * *"
    assert TITLE_ATTRIBUTE not in codes
    server.remove_item("65f0c1a0e4d0a1b2c3d4e502")
    assert http.get("/api/item/65f0c1a0e4d0a1b2c3d4e502").status_code == 404
    assert len(server.items) == 12


def test_items_are_copies(server: FakeAlloyServer) -> None:
    server.items[0]["itemId"] = "changed"

    assert server.items[0]["itemId"] == "65f0c1a0e4d0a1b2c3d4e501"
