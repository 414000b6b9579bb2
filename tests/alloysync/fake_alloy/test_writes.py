"""Writing to the fake Alloy: PUT edits with signatures (recorded per item), and hard deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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
    HEX24,
    assert_alloy_error,
    item_property,
    query,
    query_body,
    result_ids,
    value,
)

pytestmark = pytest.mark.timeout(60)

ITEM = "65f0c1a0e4d0a1b2c3d4e501"


def attributes_of(item: dict[str, Any]) -> dict[str, Any]:
    return {entry["attributeCode"]: entry["value"] for entry in item["attributes"]}


def put(http: httpx.Client, item_id: str, signature: str, **changes: object) -> httpx.Response:
    attributes = [{"attributeCode": code, "value": v} for code, v in changes.items()]
    return http.put(f"/api/item/{item_id}", json={"signature": signature, "attributes": attributes})


def codes(**by_name: object) -> dict[str, object]:
    names = {"title": TITLE_ATTRIBUTE, "cron": SAMPLE_CRON_ATTRIBUTE, "flag": SAMPLE_FLAG_ATTRIBUTE}
    return {names[name]: v for name, v in by_name.items()}


def test_a_put_changes_only_the_listed_attributes_and_null_clears_one(
    server: FakeAlloyServer, http: httpx.Client
) -> None:
    before = server.get(ITEM)
    assert before is not None

    response = put(http, ITEM, before["signature"], **codes(cron="*/5 * * * *", title=None))

    after = response.json()["item"]
    expected = {**attributes_of(before), SAMPLE_CRON_ATTRIBUTE: "*/5 * * * *"}
    del expected[TITLE_ATTRIBUTE]
    assert attributes_of(after) == expected
    assert HEX24.match(after["signature"])
    assert after["signature"] != before["signature"]
    assert server.get(ITEM) == after


def test_every_put_changes_the_signature_so_the_old_one_is_stale(server: FakeAlloyServer, http: httpx.Client) -> None:
    first = (server.get(ITEM) or {})["signature"]
    second = put(http, ITEM, first, **codes(title="one")).json()["item"]["signature"]
    third = put(http, ITEM, second, **codes(title="one")).json()["item"]["signature"]  # same value: still an edit

    assert len({first, second, third}) == 3
    assert_alloy_error(put(http, ITEM, second, **codes(title="two")), 409, "ItemSignatureMismatch")
    assert attributes_of(server.get(ITEM) or {})[TITLE_ATTRIBUTE] == "one"


def test_a_put_moves_the_edit_time_and_is_recorded(server: FakeAlloyServer, http: httpx.Client) -> None:
    then = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    server.clock = lambda: then
    signature = (server.get(ITEM) or {})["signature"]

    put(http, ITEM, signature, **codes(cron="0 * * * *"))
    stale = put(http, ITEM, signature, **codes(cron="1 * * * *"))

    assert stale.status_code == 409
    assert server.edit_time(ITEM) == then
    assert server.edits == [(ITEM, then, {SAMPLE_CRON_ATTRIBUTE: "0 * * * *"})]  # the refused one is not
    since = {
        "type": "GreaterThan",
        "children": [item_property("lastEditDate"), value("DateTime", "2026-11-29T09:59:00Z")],
    }
    assert ITEM in result_ids(query(http, query_body(since)))


def test_edits_made_by_a_test_are_not_counted_as_puts(server: FakeAlloyServer) -> None:
    server.edit_item(ITEM, codes(title="by a user"))

    assert server.edits == []


def test_delete_removes_the_item_completely(server: FakeAlloyServer, http: httpx.Client) -> None:
    response = http.delete(f"/api/item/{ITEM}")

    assert response.status_code == 200
    assert response.json() == {}
    assert_alloy_error(http.get(f"/api/item/{ITEM}"), 404, "ItemNotFound")
    assert ITEM not in result_ids(query(http, query_body(collection=["Live", "Archive", "Inventory", "Template"])))
    assert server.get(ITEM) is None
    assert server.edit_time(ITEM) is None
    assert_alloy_error(http.delete(f"/api/item/{ITEM}"), 404, "ItemNotFound")
    assert_alloy_error(put(http, ITEM, "0" * 24), 404, "ItemNotFound")


@pytest.mark.parametrize("context", ["Core", "Module"])
def test_core_and_module_items_cannot_be_deleted(server: FakeAlloyServer, http: httpx.Client, context: str) -> None:
    item = server.put_item(make_item({TITLE_ATTRIBUTE: "system"}, context=context))

    response = http.delete(f"/api/item/{item['itemId']}")

    assert response.status_code == 403
    assert server.get(item["itemId"]) is not None


def test_remove_item_is_a_hard_delete_too(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.remove_item(ITEM, at=datetime.now(UTC) + timedelta(seconds=1))

    assert_alloy_error(http.get(f"/api/item/{ITEM}"), 404, "ItemNotFound")
    with pytest.raises(KeyError):
        server.remove_item(ITEM)
