"""Items parsed from Alloy's JSON: strict about what is used, tolerant of the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from alloysync.client import AlloyClient, AlloyResponseError
from alloysync.client.items import AlloyItem, page_item
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
def test_a_wrong_shape_item_is_read_as_that_item_s_problem_and_the_rest_still_read(
    server: FakeAlloyServer, client: AlloyClient, attributes: Any
) -> None:
    bad_id = "000000000000000000000bad"
    server.put_item({"itemId": bad_id, "designCode": SAMPLE_DESIGN_CODE, "attributes": attributes})
    server.put_item(make_item({TITLE_ATTRIBUTE: "fine"}, item_id="f" * 24))

    read = {item.item_id: item for item in client.iter_items(ALL_JOBS)}
    bad, fine = read[bad_id], read["f" * 24]

    assert bad.item_id == bad_id and bad.problem.startswith("Alloy sent this item malformed (page 1, item 0): attrib")
    assert fine.problem == "" and fine.attribute(TITLE_ATTRIBUTE) == "fine"


def test_an_item_without_an_id_is_a_response_error_naming_its_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        good = make_item({}, item_id="a" * 24)
        return httpx.Response(200, json={"page": 1, "pageSize": 100, "results": [good, {"attributes": []}]})

    with mock_client(handler, []) as client, pytest.raises(AlloyResponseError, match=r"page 1, item 1: itemId"):
        list(client.iter_items(ALL_JOBS))


def test_a_malformed_item_with_an_id_is_an_item_carrying_its_problem():
    item = page_item({"itemId": "65f0c1a0e4d0a1b2c3d4e501", "attributes": "not a list"}, page=3, index=7)
    assert item.item_id == "65f0c1a0e4d0a1b2c3d4e501" and dict(item.attributes) == {}
    assert item.problem == "Alloy sent this item malformed (page 3, item 7): attributes is a string, not a list"


@pytest.mark.parametrize("raw", [{"attributes": []}, {"itemId": "", "attributes": []}, {"itemId": 5}, ["a list"], None])
def test_a_malformed_item_without_an_id_fails_the_page_naming_its_place(raw):
    with pytest.raises(AlloyResponseError, match="malformed item on page 3, item 7"):
        page_item(raw, page=3, index=7)


def test_a_well_formed_item_has_no_problem():
    assert page_item({"itemId": "a", "attributes": []}, page=1, index=0).problem == ""
