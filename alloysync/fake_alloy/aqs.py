"""The fake Alloy's AQS interpreter: the query subset alloysync sends, checked as Alloy checks it.

``parse_root`` reads a ``Query`` or ``StatisticsAggregation`` body into a design, collections and a
predicate over item dicts; a body Alloy would refuse raises ``ApiError`` 400 ``AqsInvalidQuery``.
``ApiError`` lives here because the interpreter is the lowest layer that answers with Alloy errors.

Nodes: ``And``, ``Or``, ``Equals`` (any of several values), ``GreaterThan`` and ``LessThan`` (strict);
operands ``Attribute`` and ``ItemProperty`` ``itemId``, ``designCode`` and ``lastEditDate``. The edit
time is not in the item (Alloy does not return it): the store hands the interpreter a lookup.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from alloysync.fake_alloy.samples import attribute_value
from alloysync.fake_alloy.timestamps import alloy_ticks, datetime_ticks

COLLECTIONS = frozenset({"Live", "Inventory", "Archive", "Template"})

Predicate = Callable[[Mapping[str, Any]], bool]
Getter = Callable[[Mapping[str, Any]], Any]
# The store's lookup of an item's last edit time (aware UTC), or None for an item it does not hold.
EditTime = Callable[[Mapping[str, Any]], datetime | None]


def no_edit_time(item: Mapping[str, Any]) -> datetime | None:
    """An ``EditTime`` for callers that keep no edit times: every item's is unknown."""
    return None


class ApiError(Exception):
    """An error answer in Alloy's shape: HTTP ``status``, Alloy's ``category`` and ``message``."""

    def __init__(self, status: int, category: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message


def aqs_error(message: str) -> ApiError:
    """The 400 Alloy answers to a query it refuses."""
    return ApiError(400, "AqsInvalidQuery", message)


class Instant(NamedTuple):
    """A DateTime value, as Alloy's 100 ns ticks since the epoch (finer than a datetime holds)."""

    ticks: int


class ParsedRoot(NamedTuple):
    """A root node, read: the design, the collections, the raw properties and the condition as a predicate."""

    design_code: str
    collections: frozenset[str]
    properties: dict[str, Any]
    predicate: Predicate


def parse_root(body: Any, root_type: str, *, edit_time: EditTime = no_edit_time) -> ParsedRoot:
    """The ``{"aqs": {"type": root_type, ...}}`` body, read; ``ApiError`` 400 if Alloy would refuse it.

    ``edit_time`` gives the ``lastEditDate`` of an item; the predicate calls it while it runs.
    """
    node = body.get("aqs") if isinstance(body, dict) else None
    if not isinstance(node, dict) or node.get("type") != root_type:
        raise aqs_error(f'The body must be {{"aqs": {{"type": "{root_type}", ...}}}}.')
    properties = node.get("properties")
    if not isinstance(properties, dict):
        raise aqs_error(f"The {root_type} node has no properties object.")
    design = properties.get("dodiCode")
    if not isinstance(design, str) or not design:
        raise aqs_error("dodiCode must be a design or interface code.")
    children = node.get("children", [])
    if not isinstance(children, list) or len(children) > 1:
        raise aqs_error("A root node takes at most one child; combine conditions with And or Or.")
    predicate = _compile(children[0], edit_time) if children else (lambda item: True)
    return ParsedRoot(design, _parse_collections(properties.get("collectionCode", ["Live"])), properties, predicate)


def _parse_collections(raw: Any) -> frozenset[str]:
    codes = [raw] if isinstance(raw, str) else raw
    if not isinstance(codes, list) or not codes or not all(code in COLLECTIONS for code in codes):
        raise aqs_error(f"collectionCode must be one or more of {sorted(COLLECTIONS)}, not {raw!r}.")
    return frozenset(codes)


def _children(node: dict[str, Any], count: int | None = None) -> list[Any]:
    children = node.get("children")
    if not isinstance(children, list) or not children or (count is not None and len(children) != count):
        wanted = f"exactly {count}" if count else "at least one"
        raise aqs_error(f"A {node.get('type')} node needs {wanted} children.")
    return children


def _compile(node: Any, edit_time: EditTime) -> Predicate:
    """A predicate over item dicts for one AQS condition node."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise aqs_error("Every AQS node must be an object with a string type.")
    kind = node["type"]
    if kind in ("And", "Or"):
        parts = [_compile(child, edit_time) for child in _children(node)]
        combine = all if kind == "And" else any
        return lambda item: combine(part(item) for part in parts)
    if kind in ("Equals", "GreaterThan", "LessThan"):
        operand, value_node = _children(node, 2)
        getter, values = _operand(operand, edit_time), _values(value_node)
        if kind == "Equals":
            return lambda item: any(_same(getter(item), value) for value in values)
        # Strict, against the first value: "edited after T" must not return an item edited at T.
        sign = 1 if kind == "GreaterThan" else -1
        return lambda item: _compare(getter(item), values[0]) == sign
    raise aqs_error(f"The fake Alloy does not know AQS node type {kind!r}.")


def _operand(node: Any, edit_time: EditTime) -> Getter:
    properties = node.get("properties") if isinstance(node, dict) else None
    kind = node.get("type") if isinstance(node, dict) else None
    if kind == "Attribute" and isinstance(properties, dict) and isinstance(properties.get("attributeCode"), str):
        code = properties["attributeCode"]
        return lambda item: attribute_value(item, code)
    if kind == "ItemProperty" and isinstance(properties, dict):
        # Alloy matches item property names case-insensitively.
        name = str(properties.get("itemPropertyName", "")).lower()
        if name in ("itemid", "designcode"):
            key = "itemId" if name == "itemid" else "designCode"
            return lambda item: item.get(key)
        if name == "lasteditdate":
            return edit_time
        raise aqs_error(f"The fake Alloy supports ItemProperty itemId, designCode and lastEditDate, not {name!r}.")
    raise aqs_error("A comparison's first child must be an Attribute or ItemProperty node.")


_VALUE_TYPES: dict[str, Callable[[Any], bool]] = {
    "Boolean": lambda value: isinstance(value, bool),
    "String": lambda value: isinstance(value, str),
    "DateTime": lambda value: isinstance(value, str),
    "Number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
}


def _values(node: Any) -> list[Any]:
    kind = node.get("type") if isinstance(node, dict) else None
    check = _VALUE_TYPES.get(kind) if isinstance(kind, str) else None
    properties = node.get("properties") if isinstance(node, dict) else None
    values = properties.get("value") if isinstance(properties, dict) else None
    if check is None or not isinstance(values, list) or not values or not all(map(check, values)):
        raise aqs_error(f"A value node must be one of {sorted(_VALUE_TYPES)} with a non-empty value array.")
    if kind == "DateTime":
        try:
            return [Instant(alloy_ticks(text)) for text in values]
        except ValueError as exc:
            raise aqs_error(f"A DateTime value must be ISO-8601 with Z or an offset: {exc}") from None
    return values


def _as_instant(value: Any) -> Instant | None:
    """``value`` as an ``Instant`` when it is one, a datetime or an ISO string (a date attribute), else None."""
    if isinstance(value, Instant):
        return value
    if isinstance(value, datetime):
        return Instant(datetime_ticks(value))
    if isinstance(value, str):
        try:
            return Instant(alloy_ticks(value))
        except ValueError:
            return None
    return None


def _same(left: Any, right: Any) -> bool:
    if isinstance(right, Instant):  # a DateTime value: compare instants, not spellings
        return _as_instant(left) == right
    # JSON true must not equal 1: compare booleans by identity.
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def _compare(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 as ``left`` is below, at or above ``right``; None when they cannot be ordered.

    An item without the value (None) is neither above nor below anything, as in Alloy.
    """
    if isinstance(right, Instant):
        left = _as_instant(left)
    elif isinstance(left, str) and isinstance(right, str):
        pass
    elif not all(isinstance(side, int | float) and not isinstance(side, bool) for side in (left, right)):
        return None
    if left is None:
        return None
    return int(left > right) - int(left < right)


class SortOrder(NamedTuple):
    """A query's ``sortInfo``, read: ``by`` is ``"itemid"`` or ``"lasteditdate"``."""

    by: str
    reverse: bool


def parse_sort(properties: Mapping[str, Any]) -> SortOrder:
    """A query's ``sortInfo``: by ``ItemId`` (the default) or ``LastEditDate``, ascending or descending."""
    sort_info = properties.get("sortInfo") or {"itemProperty": "ItemId"}
    by = str(sort_info.get("itemProperty", "")).lower() if isinstance(sort_info, dict) else ""
    if by not in ("itemid", "lasteditdate"):
        raise aqs_error("The fake Alloy sorts by ItemId or LastEditDate only.")
    order = sort_info.get("sortOrder", "Ascending")
    if order not in ("Ascending", "Descending"):
        raise aqs_error(f"sortOrder must be Ascending or Descending, not {order!r}.")
    return SortOrder(by, order == "Descending")


def project(item: dict[str, Any], attributes: Any) -> dict[str, Any]:
    """The item with only the requested attributes (``["all"]``: every one)."""
    item = copy.deepcopy(item)
    if attributes in (None, ["all"]):
        return item
    if not isinstance(attributes, list) or not all(isinstance(code, str) for code in attributes):
        raise aqs_error('attributes must be ["all"] or a list of attribute codes.')
    wanted = set(attributes)
    item["attributes"] = [
        entry
        for entry in item.get("attributes") or []
        if isinstance(entry, dict) and entry.get("attributeCode") in wanted
    ]
    return item
