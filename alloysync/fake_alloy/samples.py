"""The sample design and its items: codes, the bundled ``sample_items.json``, and items in Alloy's shape.

Also the small helpers on item JSON that the AQS interpreter and the server share.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SAMPLE_DESIGN_CODE = "designs_scheduledJobs_65f0c0ffee0000000000abcd"
TITLE_ATTRIBUTE = "attributes_itemsTitle"
SAMPLE_FLAG_ATTRIBUTE = "attributes_scheduledJobsIsJob_65f0c0ffee0000000000abce"
SAMPLE_CRON_ATTRIBUTE = "attributes_scheduledJobsCron_65f0c0ffee0000000000abcf"
SAMPLE_STEPS_ATTRIBUTE = "attributes_scheduledJobsSteps_65f0c0ffee0000000000abd0"
SAMPLE_TIMEZONE_ATTRIBUTE = "attributes_scheduledJobsTimezone_65f0c0ffee0000000000abd1"
# Attributes alloysync writes each job's state onto (ALLOY_STATUS_ATTRIBUTE and the others).
SAMPLE_STATUS_ATTRIBUTE = "attributes_scheduledJobsStatus_65f0c0ffee0000000000abd2"
SAMPLE_MESSAGE_ATTRIBUTE = "attributes_scheduledJobsMessage_65f0c0ffee0000000000abd3"
SAMPLE_LAST_RUN_ATTRIBUTE = "attributes_scheduledJobsLastRun_65f0c0ffee0000000000abd4"
SAMPLE_NEXT_RUN_ATTRIBUTE = "attributes_scheduledJobsNextRun_65f0c0ffee0000000000abd5"
SAMPLE_RUN_NOW_ATTRIBUTE = "attributes_scheduledJobsRunNow_65f0c0ffee0000000000abd6"
SAMPLE_ITEMS_PATH = Path(__file__).with_name("sample_items.json")
# Not a secret: the key the demo uses when ALLOY_API_KEY is not set.
DEMO_API_KEY = "00000000-0000-4000-8000-0000000de770"


def sample_alloy_settings(url: str, api_key: str) -> dict[str, str]:
    """The ALLOY_* settings that point alloysync at a fake Alloy serving the sample design."""
    return {
        "ALLOY_BASE_URL": url,
        "ALLOY_API_KEY": api_key,
        "ALLOY_JOB_DESIGN": SAMPLE_DESIGN_CODE,
        "ALLOY_JOB_FLAG_ATTRIBUTE": SAMPLE_FLAG_ATTRIBUTE,
        "ALLOY_CRON_ATTRIBUTE": SAMPLE_CRON_ATTRIBUTE,
        "ALLOY_STEPS_ATTRIBUTE": SAMPLE_STEPS_ATTRIBUTE,
        "ALLOY_TIMEZONE_ATTRIBUTE": SAMPLE_TIMEZONE_ATTRIBUTE,
        "ALLOY_TITLE_ATTRIBUTE": TITLE_ATTRIBUTE,
    }


def sample_write_back_settings() -> dict[str, str]:
    """The ALLOY_*_ATTRIBUTE settings that make alloysync write each job's state onto the sample items."""
    return {
        "ALLOY_STATUS_ATTRIBUTE": SAMPLE_STATUS_ATTRIBUTE,
        "ALLOY_MESSAGE_ATTRIBUTE": SAMPLE_MESSAGE_ATTRIBUTE,
        "ALLOY_LAST_RUN_ATTRIBUTE": SAMPLE_LAST_RUN_ATTRIBUTE,
        "ALLOY_NEXT_RUN_ATTRIBUTE": SAMPLE_NEXT_RUN_ATTRIBUTE,
        "ALLOY_RUN_NOW_ATTRIBUTE": SAMPLE_RUN_NOW_ATTRIBUTE,
    }


def new_hex_id() -> str:
    """A random 24-hex id, the shape of Alloy's item ids and signatures."""
    return secrets.token_hex(12)


def make_item(
    attributes: Mapping[str, Any],
    *,
    item_id: str | None = None,
    design_code: str = SAMPLE_DESIGN_CODE,
    collection: str = "Live",
    context: str = "Customer",
    signature: str | None = None,
) -> dict[str, Any]:
    """An item in Alloy's JSON shape; attributes whose value is None are left out, as Alloy does."""
    return {
        "itemId": item_id or new_hex_id(),
        "designCode": design_code,
        "collection": collection,
        "icon": "icon-clock",
        "colour": "#f9bc13",
        "locked": False,
        "context": context,
        "attributes": [
            {"attributeCode": code, "value": value} for code, value in attributes.items() if value is not None
        ],
        "signature": signature or new_hex_id(),
    }


def load_items(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Items from a JSON file holding a list of items (or ``{"items": [...]}``); ValueError if malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Cannot read items from {path}: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("items")
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a JSON list of items (or an object with an 'items' list).")
    for index, item in enumerate(data):
        check_storable(item, f"{path}: item {index}")
    return data


# --- item JSON, shared by the AQS interpreter and the server ------------------------------------


def check_storable(item: Any, where: str) -> None:
    """ValueError, naming ``where``, unless ``item`` is an object with a string itemId and designCode."""
    # Only what the fake needs to index and filter; the rest may be as odd as a test wants.
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object.")
    if not isinstance(item.get("itemId"), str) or not item["itemId"]:
        raise ValueError(f"{where} has no string itemId.")
    if not isinstance(item.get("designCode"), str):
        raise ValueError(f"{where} ({item['itemId']}) has no string designCode.")


def attribute_value(item: Mapping[str, Any], code: str) -> Any:
    """The value of attribute ``code`` in an item dict, or None when it has none."""
    attributes = item.get("attributes")
    if not isinstance(attributes, list):
        return None
    for entry in attributes:
        if isinstance(entry, dict) and entry.get("attributeCode") == code:
            return entry.get("value")
    return None


def set_attributes(item: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Edit only the listed attributes; a None value clears one (Alloy then omits it)."""
    kept = [
        entry
        for entry in item.get("attributes") or []
        if not (isinstance(entry, dict) and entry.get("attributeCode") in changes)
    ]
    kept.extend({"attributeCode": code, "value": value} for code, value in changes.items() if value is not None)
    item["attributes"] = kept
