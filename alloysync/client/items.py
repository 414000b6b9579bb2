"""Alloy items as values: ``AlloyItem``, and ``parse_item`` from Alloy's item JSON.

Strict about the fields alloysync uses, tolerant of the rest. A malformed item in a page of Alloy's
answers is still an ``AlloyItem`` if it has an id, carrying the ``problem``, so that it is one item's
error; without an id it cannot be told apart from any other, and becomes an ``AlloyResponseError``
naming where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from alloysync.client.errors import AlloyResponseError


@dataclass(frozen=True, slots=True)
class AlloyItem:
    """The parts of an Alloy item that alloysync uses. ``attributes`` maps attributeCode to value."""

    item_id: str
    design_code: str
    collection: str
    signature: str
    attributes: Mapping[str, Any] = field(hash=False)
    #: Why Alloy's JSON for this item could not be read (its attributes are then empty); "" if it could.
    problem: str = ""

    def attribute(self, code: str) -> Any | None:
        """The attribute's value, or None when the item has no value for it (Alloy omits those)."""
        return self.attributes.get(code)


class _ShapeError(ValueError):
    """A JSON value did not have the shape we rely on."""


def parse_item(data: Any) -> AlloyItem:
    """An ``AlloyItem`` from Alloy's item JSON; raises ``_ShapeError`` naming what is wrong.

    Strict about what we use, tolerant of the rest: Alloy adds and drops fields between versions
    (icon, colour, start/end...), so unknown fields are ignored and optional ones may be missing.
    """
    if not isinstance(data, dict):
        raise _ShapeError(f"item is {json_type(data)}, not an object")
    item_id = data.get("itemId")
    if not isinstance(item_id, str) or not item_id:
        raise _ShapeError("itemId is missing or not a non-empty string")
    return AlloyItem(
        item_id=item_id,
        design_code=_optional_str(data, "designCode"),
        collection=_optional_str(data, "collection"),
        signature=_optional_str(data, "signature"),
        attributes=MappingProxyType(_parse_attributes(data.get("attributes"))),
    )


def page_item(raw: Any, page: int, index: int) -> AlloyItem:
    """Item ``index`` (0-based) of query page ``page``.

    A malformed item with an id comes back with its ``problem`` set and no attributes; one without an
    id raises ``AlloyResponseError`` naming its place.
    """
    try:
        return parse_item(raw)
    except _ShapeError as exc:
        item_id = raw.get("itemId") if isinstance(raw, dict) else None
        if isinstance(item_id, str) and item_id:
            problem = f"Alloy sent this item malformed (page {page}, item {index}): {exc}"
            return AlloyItem(item_id, "", "", "", MappingProxyType({}), problem=problem)
        raise AlloyResponseError(f"Alloy sent a malformed item on page {page}, item {index}: {exc}.") from None


def envelope_item(body: dict[str, Any], call: str) -> AlloyItem:
    """The item in ``{"item": {...}}``, Alloy's answer to ``call``; ``AlloyResponseError`` if malformed."""
    try:
        return parse_item(body.get("item"))
    except _ShapeError as exc:
        raise AlloyResponseError(f"Alloy's answer to {call} holds a malformed item: {exc}.") from None


def json_type(value: Any) -> str:
    """What a JSON value is, for messages: ``an object``, ``a list``, ``a string``, ``null``..."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _optional_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _ShapeError(f"{key} is {json_type(value)}, not a string")
    return value


def _parse_attributes(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, list):
        raise _ShapeError(f"attributes is {json_type(raw)}, not a list")
    attributes: dict[str, Any] = {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("attributeCode"), str):
            raise _ShapeError(f"attributes[{index}] is not an object with a string attributeCode")
        attributes[entry["attributeCode"]] = entry.get("value")
    return attributes
