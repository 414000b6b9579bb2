"""The sample items and loading items from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alloysync.fake_alloy.samples import (
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_DESIGN_CODE,
    SAMPLE_FLAG_ATTRIBUTE,
    SAMPLE_ITEMS_PATH,
    SAMPLE_STEPS_ATTRIBUTE,
    SAMPLE_TIMEZONE_ATTRIBUTE,
    TITLE_ATTRIBUTE,
    load_items,
)
from tests.alloysync.fake_alloy.helpers import HEX24

pytestmark = pytest.mark.timeout(60)


def test_the_sample_items_look_like_alloys() -> None:
    items = load_items(SAMPLE_ITEMS_PATH)

    assert len(items) == 13
    assert len({item["itemId"] for item in items}) == 13
    for item in items:
        assert HEX24.match(item["itemId"]) and HEX24.match(item["signature"])
        assert item["designCode"] == SAMPLE_DESIGN_CODE
        codes = {a["attributeCode"]: a["value"] for a in item["attributes"]}
        assert {TITLE_ATTRIBUTE, SAMPLE_CRON_ATTRIBUTE, SAMPLE_STEPS_ATTRIBUTE, SAMPLE_FLAG_ATTRIBUTE} <= set(codes)
    flags = [
        next(a["value"] for a in item["attributes"] if a["attributeCode"] == SAMPLE_FLAG_ATTRIBUTE) for item in items
    ]
    assert flags.count(False) == 1
    zones = {
        a["value"] for item in items for a in item["attributes"] if a["attributeCode"] == SAMPLE_TIMEZONE_ATTRIBUTE
    }
    assert "Europe/London" in zones


def test_load_items_explains_a_malformed_file(tmp_path: Path) -> None:
    not_json, no_ids = tmp_path / "a.json", tmp_path / "b.json"
    not_json.write_text("[{")
    no_ids.write_text(json.dumps({"items": [{"designCode": SAMPLE_DESIGN_CODE}]}))

    with pytest.raises(ValueError, match=r"a\.json"):
        load_items(not_json)
    with pytest.raises(ValueError, match="item 0 has no string itemId"):
        load_items(no_ids)
