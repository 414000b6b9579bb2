"""The fake Alloy's AQS interpreter: the query subset alloysync sends, checked as Alloy checks it.

``parse_root`` reads a ``Query`` or ``StatisticsAggregation`` body into a design, collections and a
predicate over item dicts; a body Alloy would refuse raises ``ApiError`` 400 ``AqsInvalidQuery``.
``ApiError`` lives here because the interpreter is the lowest layer that answers with Alloy errors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from alloysync.fake_alloy.samples import attribute_value

COLLECTIONS = frozenset({"Live", "Inventory", "Archive", "Template"})

Predicate = Callable[[Mapping[str, Any]], bool]
Getter = Callable[[Mapping[str, Any]], Any]


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


class ParsedRoot(NamedTuple):
    """A root node, read: the design, the collections, the raw properties and the condition as a predicate."""

    design_code: str
    collections: frozenset[str]
    properties: dict[str, Any]
    predicate: Predicate


def parse_root(body: Any, root_type: str) -> ParsedRoot:
    """The ``{"aqs": {"type": root_type, ...}}`` body, read; ``ApiError`` 400 if Alloy would refuse it."""
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
    predicate = _compile(children[0]) if children else (lambda item: True)
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


def _compile(node: Any) -> Predicate:
    """A predicate over item dicts for one AQS condition node."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise aqs_error("Every AQS node must be an object with a string type.")
    kind = node["type"]
    if kind in ("And", "Or"):
        parts = [_compile(child) for child in _children(node)]
        combine = all if kind == "And" else any
        return lambda item: combine(part(item) for part in parts)
    if kind in ("Equals", "GreaterThan"):
        operand, value_node = _children(node, 2)
        getter, values = _operand(operand), _values(value_node)
        if kind == "Equals":
            return lambda item: any(_same(getter(item), value) for value in values)
        return lambda item: _greater(getter(item), values[0])
    raise aqs_error(f"The fake Alloy does not know AQS node type {kind!r}.")


def _operand(node: Any) -> Getter:
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
        raise aqs_error(f"The fake Alloy supports ItemProperty itemId and designCode, not {name!r}.")
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
    return values


def _same(left: Any, right: Any) -> bool:
    # JSON true must not equal 1: compare booleans by identity.
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def _greater(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left > right
    numbers = all(isinstance(side, int | float) and not isinstance(side, bool) for side in (left, right))
    return numbers and left > right


def sort_reverse(properties: Mapping[str, Any]) -> bool:
    """Whether a query's ``sortInfo`` asks for descending item ids (the only sort the fake knows)."""
    sort_info = properties.get("sortInfo") or {"itemProperty": "ItemId"}
    if not isinstance(sort_info, dict) or str(sort_info.get("itemProperty", "")).lower() != "itemid":
        raise aqs_error("The fake Alloy sorts by ItemId only.")
    order = sort_info.get("sortOrder", "Ascending")
    if order not in ("Ascending", "Descending"):
        raise aqs_error(f"sortOrder must be Ascending or Descending, not {order!r}.")
    return bool(order == "Descending")


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
