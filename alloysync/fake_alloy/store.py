"""The fake Alloy's tenant: items in memory, and the item endpoints' answers computed from them.

Thread-safe: the HTTP handler threads read while a test edits items. Answers are copies, so nothing
outside can change a stored item except through these methods.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from alloysync.fake_alloy.aqs import COLLECTIONS, ApiError, ParsedRoot, aqs_error, parse_root, project, sort_reverse
from alloysync.fake_alloy.samples import SAMPLE_DESIGN_CODE, check_storable, new_hex_id, set_attributes

# Alloy refuses query pages beyond this: longer result sets must be read in windows.
MAX_PAGE = 100
# Items of these contexts belong to Alloy itself and cannot be edited.
LOCKED_CONTEXTS = frozenset({"Core", "Module"})


class ItemStore:
    """One tenant's items by id, the designs that exist, and the answers to AQS and item calls.

    ``designs`` adds design codes that exist without items (the sample design always exists); a
    query on any other design is refused, as Alloy would.
    """

    def __init__(self, items: Iterable[Mapping[str, Any]] | None = None, *, designs: Iterable[str] = ()) -> None:
        self._lock = threading.RLock()
        self._items: dict[str, dict[str, Any]] = {}
        # Paging through a big set re-runs one query per page: keep its sorted matches until an edit.
        self._version = 0
        self._query_cache: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._designs = {SAMPLE_DESIGN_CODE, *designs}
        for item in items or ():
            self.put_item(item)

    # --- items, as a test or an Alloy user sees them --------------------------------------------

    @property
    def items(self) -> list[dict[str, Any]]:
        """A copy of every item, by item id."""
        with self._lock:
            return [copy.deepcopy(self._items[item_id]) for item_id in sorted(self._items)]

    def get(self, item_id: str) -> dict[str, Any] | None:
        """A copy of the item, or None when there is none with that id."""
        with self._lock:
            item = self._items.get(item_id)
            return copy.deepcopy(item) if item is not None else None

    def put_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Add or replace an item, stored as given (so tests can store odd shapes)."""
        check_storable(item, "item")
        stored = copy.deepcopy(dict(item))
        stored.setdefault("signature", new_hex_id())
        with self._lock:
            self._version += 1
            self._items[stored["itemId"]] = stored
            self._designs.add(stored["designCode"])
            return copy.deepcopy(stored)

    def edit_item(self, item_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set attributes (None clears one) as an Alloy user would; the signature changes."""
        with self._lock:
            item = self._items[item_id]
            self._version += 1
            set_attributes(item, changes)
            item["signature"] = new_hex_id()
            return copy.deepcopy(item)

    def remove_item(self, item_id: str) -> None:
        """Delete the item; KeyError when there is none with that id."""
        with self._lock:
            self._version += 1
            del self._items[item_id]

    # --- endpoint answers (called from handler threads) -----------------------------------------

    def query(self, body: Any, page: int, page_size: int) -> dict[str, Any]:
        """The answer to ``POST /api/aqs/query`` with 1-based ``page``; ``ApiError`` when Alloy would refuse."""
        root = parse_root(body, "Query")
        if page > MAX_PAGE:
            # Alloy's limit: longer result sets must be read in windows, not by paging further.
            raise aqs_error(f"Page {page} is beyond the maximum of {MAX_PAGE}; filter by a sorted property.")
        reverse, attributes = sort_reverse(root.properties), root.properties.get("attributes")
        with self._lock:  # copy the page before another thread edits an item in it
            window = self._sorted_matches(body["aqs"], root, reverse)[(page - 1) * page_size : page * page_size]
            results = [project(item, attributes) for item in window]
        return {"page": page, "pageSize": page_size, "results": results}

    def statistics(self, body: Any) -> dict[str, Any]:
        """The answer to ``POST /api/aqs/statistics``: a Count aggregation only."""
        root = parse_root(body, "StatisticsAggregation")
        if root.properties.get("aggregationType") != "Count":
            raise aqs_error("The fake Alloy's statistics support aggregationType Count only.")
        return {"results": [{"value": {"type": "Count", "value": len(self._matching(root))}}]}

    def get_item_body(self, item_id: str) -> dict[str, Any]:
        """The answer to ``GET /api/item/{id}``: ``{"item": ...}``, or ``ApiError`` 404."""
        item = self.get(item_id)
        if item is None:
            raise ApiError(404, "ItemNotFound", f"Item {item_id} does not exist.")
        return {"item": item}

    def put_item_body(self, item_id: str, body: Any) -> dict[str, Any]:
        """The answer to ``PUT /api/item/{id}``: the edited item, or ``ApiError`` 400/403/404/409."""
        changes, collection, signature = _parse_edit(body)
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                raise ApiError(404, "ItemNotFound", f"Item {item_id} does not exist.")
            if item.get("context") in LOCKED_CONTEXTS:
                raise ApiError(403, "ItemNotEditable", f"Item {item_id} belongs to {item['context']} and is read-only.")
            if signature != item.get("signature"):
                raise ApiError(409, "ItemSignatureMismatch", f"Item {item_id} was edited since that signature.")
            self._version += 1
            set_attributes(item, changes)
            item["collection"] = collection or item.get("collection", "Live")
            item["signature"] = new_hex_id()
            return {"item": copy.deepcopy(item)}

    def _sorted_matches(self, aqs: Any, root: ParsedRoot, reverse: bool) -> list[dict[str, Any]]:
        key = json.dumps(aqs, sort_keys=True)
        cached = self._query_cache.get(key)
        if cached is None or cached[0] != self._version:
            matches = sorted(self._matching(root), key=lambda item: item["itemId"], reverse=reverse)
            self._query_cache = {key: (self._version, matches)}  # one query at a time is all a read needs
            return matches
        return cached[1]

    def _matching(self, root: ParsedRoot) -> list[dict[str, Any]]:
        with self._lock:
            if root.design_code not in self._designs:
                raise aqs_error(f"Design {root.design_code!r} does not exist.")
            return [
                item
                for item in self._items.values()
                if item["designCode"] == root.design_code
                and item.get("collection", "Live") in root.collections
                and root.predicate(item)
            ]


def _parse_edit(body: Any) -> tuple[dict[str, Any], str | None, str | None]:
    def invalid(message: str) -> ApiError:
        return ApiError(400, "ModelValidationFailed", message)

    if not isinstance(body, dict):
        raise invalid("The body must be an object with signature and attributes.")
    signature, collection, attributes = body.get("signature"), body.get("collection"), body.get("attributes", [])
    if not isinstance(signature, str):
        raise invalid("signature is required.")
    if collection is not None and collection not in COLLECTIONS:
        raise invalid(f"collection must be one of {sorted(COLLECTIONS)}.")
    if not isinstance(attributes, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("attributeCode"), str) for entry in attributes
    ):
        raise invalid("attributes must be a list of {attributeCode, value} objects.")
    return {entry["attributeCode"]: entry.get("value") for entry in attributes}, collection, signature
