"""The AQS bodies alloysync sends: one query window of a design's items, and their count.

AQS is Alloy's JSON query language: a root node (``Query``, ``StatisticsAggregation``) whose single
child is a condition tree. ``count_from_answer`` reads the count back. See ``docs/alloy-api.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alloysync.client.errors import AlloyResponseError
from alloysync.client.items import json_type


@dataclass(frozen=True)
class ItemQuery:
    """Which items to read: a design (or interface), its collections, an optional Boolean flag and
    an optional edit time.

    - ``collection``: the one collection to read; ``collections``, when not empty, replaces it (for
      an incremental read over ``("Live", "Archive")``, which sees items archived since).
    - ``flag_attribute``: only items whose flag is true; None reads them all (an incremental read
      must not filter on the flag, or it cannot see an item whose flag was turned off).
    - ``edited_after``: only items created or edited strictly after this (aware) time.
    """

    design_code: str
    collection: str = "Live"
    flag_attribute: str | None = None
    edited_after: datetime | None = None
    collections: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A bare string would be read as a tuple of one-letter collections.
        if isinstance(self.collections, str):
            raise TypeError("ItemQuery.collections is a tuple of collection codes, not a string.")
        if self.edited_after is not None and self.edited_after.utcoffset() is None:
            raise ValueError("ItemQuery.edited_after must be an aware datetime.")

    @property
    def collection_codes(self) -> list[str]:
        """The collections the query reads, as AQS's ``collectionCode`` takes them."""
        return list(self.collections or (self.collection,))


def build_query_aqs(query: ItemQuery, *, after_item_id: str | None = None) -> dict[str, Any]:
    """The AQS body for one window of ``query``, sorted by item id, after ``after_item_id`` if given."""
    properties = {
        "dodiCode": query.design_code,
        "collectionCode": query.collection_codes,
        "attributes": ["all"],
        "sortInfo": {"itemProperty": "ItemId", "sortOrder": "Ascending"},
    }
    return {"aqs": {"type": "Query", "properties": properties, "children": _root_children(query, after_item_id)}}


def build_count_aqs(query: ItemQuery) -> dict[str, Any]:
    """The AQS body counting the items ``query`` matches."""
    properties = {
        "dodiCode": query.design_code,
        "collectionCode": query.collection_codes,
        "aggregationType": "Count",
    }
    return {
        "aqs": {
            "type": "StatisticsAggregation",
            "properties": properties,
            "children": _root_children(query, None),
        }
    }


#: More items than any tenant holds (about 10,000 pages of 100 per window of 100 pages): a count
#: beyond it is a garbled answer.
MAX_COUNT = 10**9


def count_from_answer(body: dict[str, Any]) -> int:
    """The count in Alloy's answer to a ``build_count_aqs`` body; ``AlloyResponseError`` if it has none."""
    try:
        count = body["results"][0]["value"]["value"]
    except (KeyError, IndexError, TypeError):
        raise AlloyResponseError("Alloy's count response has no results[0].value.value.") from None
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int):
        raise AlloyResponseError(f"Alloy's count is {json_type(count)}, not a whole number.")
    if not 0 <= count <= MAX_COUNT:
        # Not a count of items any tenant holds: a garbled answer, which must not drive a full read.
        shown = str(count) if abs(count) < 10**20 else f"a number of {len(str(abs(count)))} digits"
        raise AlloyResponseError(f"Alloy's count is {shown}, not a number of items from 0 to {MAX_COUNT:,}.")
    return count


def _value_node(node_type: str, value: Any) -> dict[str, Any]:
    # Alloy's value nodes always carry an array, even for a single value.
    return {"type": node_type, "properties": {"value": [value]}}


def alloy_datetime(when: datetime) -> str:
    """``when`` as AQS's DateTime values carry it: UTC, milliseconds, ``Z`` (``2026-11-29T10:00:00.000Z``).

    Microseconds are truncated, never rounded up: "edited after" an earlier time selects a little
    more, never less.
    """
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _conditions(query: ItemQuery, after_item_id: str | None) -> list[dict[str, Any]]:
    conditions: list[dict[str, Any]] = []
    if query.flag_attribute:
        attribute = {"type": "Attribute", "properties": {"attributeCode": query.flag_attribute}}
        conditions.append({"type": "Equals", "children": [attribute, _value_node("Boolean", True)]})
    if query.edited_after is not None:
        # lastEditDate is not in the payload: it can be filtered on, never read back or windowed on.
        edited = {"type": "ItemProperty", "properties": {"itemPropertyName": "lastEditDate"}}
        since = _value_node("DateTime", alloy_datetime(query.edited_after))
        conditions.append({"type": "GreaterThan", "children": [edited, since]})
    if after_item_id is not None:
        item_id = {"type": "ItemProperty", "properties": {"itemPropertyName": "itemId"}}
        conditions.append({"type": "GreaterThan", "children": [item_id, _value_node("String", after_item_id)]})
    return conditions


def _root_children(query: ItemQuery, after_item_id: str | None) -> list[dict[str, Any]]:
    # A root node takes at most one child: several conditions go under an And node.
    conditions = _conditions(query, after_item_id)
    if len(conditions) <= 1:
        return conditions
    return [{"type": "And", "children": conditions}]
