"""Items parsed from Alloy's JSON: strict about what is used, tolerant of the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from alloysync.client import AlloyClient, AlloyResponseError
from alloysync.client.items import AlloyItem
from alloysync.fake_alloy import SAMPLE_DESIGN_CODE, TITLE_ATTRIBUTE, FakeAlloyServer, make_item
from tests.alloysync.client.helpers import ALL_JOBS, mock_client

pytestmark = pytest.mark.timeout(60)


def test_it_parses_items_into_attribute_mappings(client: AlloyClient) -> None:
    item = client.get_item("65f0c1a0e4d0a1b2c3d4e501")

    assert isinstance(item, AlloyItem)
    assert item.design_code == SAMPLE_DESIGN_CODE
    assert item.collection == "Live"
    assert item.signature == "64149c300a618a0370228fc4"
    assert item.attribute(TITLE_ATTRIBUTE) == "Nightly gully report"
    assert item.attribute("attributes_notThere") is None


def test_it_tolerates_unknown_and_missing_extra_fields(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.put_item(
        {
            "itemId": "000000000000000000000abc",
            "designCode": SAMPLE_DESIGN_CODE,
            "attributes": [{"attributeCode": TITLE_ATTRIBUTE}, {"attributeCode": "attributes_x", "value": [1, 2]}],
            "signature": "0123456789abcdef01234567",
            "start": "2021-01-01T00:00:00.000Z",
            "brandNewField": {"nested": True},
        }
    )

    item = client.get_item("000000000000000000000abc")

    assert item is not None
    assert item.collection == ""
    assert item.attribute(TITLE_ATTRIBUTE) is None
    assert item.attribute("attributes_x") == [1, 2]


@pytest.mark.parametrize(
    "attributes",
    ["not a list", [{"value": 1}], [{"attributeCode": 7, "value": 1}], ["attributes_itemsTitle"]],
)
def test_a_wrong_shape_item_is_a_response_error_naming_the_item(
    server: FakeAlloyServer, client: AlloyClient, attributes: Any
) -> None:
    bad_id = "000000000000000000000bad"
    server.put_item({"itemId": bad_id, "designCode": SAMPLE_DESIGN_CODE, "attributes": attributes})

    with pytest.raises(AlloyResponseError) as caught:
        list(client.iter_items(ALL_JOBS))

    assert bad_id in caught.value.message
    assert "page 1" in caught.value.message
    assert "item 0" in caught.value.message
    assert caught.value.permanent


def test_an_item_without_an_id_is_a_response_error_naming_its_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        good = make_item({}, item_id="a" * 24)
        return httpx.Response(200, json={"page": 1, "pageSize": 100, "results": [good, {"attributes": []}]})

    with mock_client(handler, []) as client, pytest.raises(AlloyResponseError, match=r"page 1, item 1: itemId"):
        list(client.iter_items(ALL_JOBS))
