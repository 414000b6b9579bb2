"""The fake Alloy's tenant: items in memory, and the item endpoints' answers computed from them.

Thread-safe: the HTTP handler threads read while a test edits items. Answers are copies, so nothing
outside can change a stored item except through these methods.

Besides the items it keeps what Alloy keeps and does not return in an item: each item's last edit
time (for ``lastEditDate`` in AQS), the item log (every create, edit and delete), and the edits made
through ``PUT /api/item/{id}``. Every change goes through ``_changed``, which a server extends to
run workflows.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from alloysync.fake_alloy.aqs import (
    COLLECTIONS,
    ApiError,
    ParsedRoot,
    SortOrder,
    aqs_error,
    parse_root,
    parse_sort,
    project,
)
from alloysync.fake_alloy.samples import SAMPLE_DESIGN_CODE, check_storable, new_hex_id, set_attributes
from alloysync.fake_alloy.timestamps import format_alloy_timestamp

# Alloy refuses query pages beyond this: longer result sets must be read in windows.
MAX_PAGE = 100
# Items of these contexts belong to Alloy itself and cannot be edited.
LOCKED_CONTEXTS = frozenset({"Core", "Module"})
# Who the item log says made every change: the fake has one user, the one session/me names.
FAKE_USERNAME = "fake.alloy.user"

# Returns "now" as an aware datetime: the store's clock for edit times.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default ``Clock``: the wall clock, in UTC."""
    return datetime.now(UTC)


class ItemEvent(NamedTuple):
    """One change to an item, as Alloy's item log lists it: ``action`` is Create, Edit or Delete."""

    item_id: str
    design_code: str
    action: str
    date: datetime


class ItemEdit(NamedTuple):
    """One ``PUT /api/item/{id}`` that was applied: when, and the attributes it set (None: cleared)."""

    item_id: str
    at: datetime
    attributes: dict[str, Any]


class ItemStore:
    """One tenant's items by id, the designs that exist, and the answers to AQS and item calls.

    ``designs`` adds design codes that exist without items (the sample design always exists); a
    query on any other design is refused, as Alloy would. ``clock`` gives the edit time of changes
    made without an explicit ``at`` (default: the wall clock); tests may replace ``store.clock``.
    """

    def __init__(
        self,
        items: Iterable[Mapping[str, Any]] | None = None,
        *,
        designs: Iterable[str] = (),
        clock: Clock = utc_now,
    ) -> None:
        self._lock = threading.RLock()
        self.clock = clock
        self._items: dict[str, dict[str, Any]] = {}
        self._edit_times: dict[str, datetime] = {}
        self._events: list[ItemEvent] = []
        self._edits: list[ItemEdit] = []
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

    def edit_time(self, item_id: str) -> datetime | None:
        """The item's last edit time (aware UTC), or None when there is no such item."""
        with self._lock:
            return self._edit_times.get(item_id)

    @property
    def events(self) -> list[ItemEvent]:
        """Every create, edit and delete so far, in the order they happened."""
        with self._lock:
            return list(self._events)

    @property
    def edits(self) -> list[ItemEdit]:
        """Every edit applied through ``PUT /api/item/{id}``, in order (alloysync's writes)."""
        with self._lock:
            return list(self._edits)

    def put_item(self, item: Mapping[str, Any], *, at: datetime | None = None) -> dict[str, Any]:
        """Add or replace an item, stored as given (so tests can store odd shapes).

        A new id is a create, a known one an edit; either way edited at ``at`` (default: the clock).
        """
        check_storable(item, "item")
        stored = copy.deepcopy(dict(item))
        stored.setdefault("signature", new_hex_id())
        with self._lock:
            when = self._when(at)
            previous = self._items.get(stored["itemId"])
            self._version += 1
            self._items[stored["itemId"]] = stored
            self._designs.add(stored["designCode"])
            self._edit_times[stored["itemId"]] = when
            changed = _changed_attributes(previous or {}, stored)
            self._changed(
                ItemEvent(stored["itemId"], stored["designCode"], "Edit" if previous else "Create", when), changed
            )
            return copy.deepcopy(stored)

    def edit_item(
        self,
        item_id: str,
        changes: Mapping[str, Any],
        *,
        collection: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Set attributes (None clears one) and optionally move collection, as an Alloy user would.

        The signature changes and the item is edited at ``at`` (default: the clock). KeyError when
        there is no such item.
        """
        with self._lock:
            item = self._items[item_id]
            self._apply_edit(item, changes, collection, self._when(at))
            return copy.deepcopy(item)

    def remove_item(self, item_id: str, *, at: datetime | None = None) -> None:
        """Delete the item completely (a hard delete, at ``at``); KeyError when there is none with that id."""
        with self._lock:
            when = self._when(at)
            item = self._items.pop(item_id)
            self._version += 1
            del self._edit_times[item_id]
            self._changed(ItemEvent(item_id, item["designCode"], "Delete", when), frozenset())

    # --- endpoint answers (called from handler threads) -----------------------------------------

    def query(self, body: Any, page: int, page_size: int) -> dict[str, Any]:
        """The answer to ``POST /api/aqs/query`` with 1-based ``page``; ``ApiError`` when Alloy would refuse."""
        root = parse_root(body, "Query", edit_time=self._edit_time_of)
        if page > MAX_PAGE:
            # Alloy's limit: longer result sets must be read in windows, not by paging further.
            raise aqs_error(f"Page {page} is beyond the maximum of {MAX_PAGE}; filter by a sorted property.")
        order, attributes = parse_sort(root.properties), root.properties.get("attributes")
        with self._lock:  # copy the page before another thread edits an item in it
            window = self._sorted_matches(body["aqs"], root, order)[(page - 1) * page_size : page * page_size]
            results = [project(item, attributes) for item in window]
        return {"page": page, "pageSize": page_size, "results": results}

    def statistics(self, body: Any) -> dict[str, Any]:
        """The answer to ``POST /api/aqs/statistics``: a Count aggregation only."""
        root = parse_root(body, "StatisticsAggregation", edit_time=self._edit_time_of)
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
            item = self._editable(item_id)
            if signature != item.get("signature"):
                raise ApiError(409, "ItemSignatureMismatch", f"Item {item_id} was edited since that signature.")
            when = self._apply_edit(item, changes, collection, self._when(None))
            self._edits.append(ItemEdit(item_id, when, copy.deepcopy(changes)))
            return {"item": copy.deepcopy(item)}

    def delete_item_body(self, item_id: str) -> dict[str, Any]:
        """The answer to ``DELETE /api/item/{id}``: ``{}``, or ``ApiError`` 403/404."""
        with self._lock:
            self._editable(item_id)
            self.remove_item(item_id)
        return {}

    def item_log_body(self, design_code: str, since: datetime | None, page: int, page_size: int) -> dict[str, Any]:
        """The answer to ``GET /api/item-log/design/{code}``: the design's events strictly after
        ``since`` (all when None), oldest first, 1-based ``page`` of ``page_size``."""
        with self._lock:
            if design_code not in self._designs:
                # Not 404: a client reads 404 as "this tenant has no item log".
                raise ApiError(400, "ModelValidationFailed", f"Design {design_code!r} does not exist.")
            events = [e for e in self._events if e.design_code == design_code and (since is None or e.date > since)]
        events.sort(key=lambda event: event.date)  # stable: events at one instant stay in the order they happened
        window = events[(page - 1) * page_size : page * page_size]
        return {"page": page, "pageSize": page_size, "results": [_log_entry(event) for event in window]}

    def _editable(self, item_id: str) -> dict[str, Any]:
        """The item that PUT or DELETE may change (the caller holds the lock), or ``ApiError`` 404 if
        there is none, 403 if it belongs to a read-only context."""
        item = self._items.get(item_id)
        if item is None:
            raise ApiError(404, "ItemNotFound", f"Item {item_id} does not exist.")
        if item.get("context") in LOCKED_CONTEXTS:
            raise ApiError(403, "ItemNotEditable", f"Item {item_id} belongs to {item['context']} and is read-only.")
        return item

    # --- changes --------------------------------------------------------------------------------

    def _when(self, at: datetime | None) -> datetime:
        when = self.clock() if at is None else at
        if when.tzinfo is None:
            raise ValueError("Edit times must be aware datetimes (UTC), not naive ones.")
        return when.astimezone(UTC)

    def _apply_edit(
        self, item: dict[str, Any], changes: Mapping[str, Any], collection: str | None, when: datetime
    ) -> datetime:
        """Edit ``item`` in place (locked by the caller): attributes, collection, signature, edit time."""
        before = copy.deepcopy(item)
        self._version += 1
        set_attributes(item, changes)
        item["collection"] = collection or item.get("collection", "Live")
        item["signature"] = new_hex_id()
        self._edit_times[item["itemId"]] = when
        self._changed(ItemEvent(item["itemId"], item["designCode"], "Edit", when), _changed_attributes(before, item))
        return when

    def _changed(self, event: ItemEvent, attributes: frozenset[str]) -> None:
        """Log a change (called with the lock held); ``attributes`` are the codes whose value changed.

        A server extends this to run workflows: it must not block, as the lock is held.
        """
        self._events.append(event)

    def _edit_time_of(self, item: Mapping[str, Any]) -> datetime | None:
        return self._edit_times.get(item.get("itemId", ""))

    def _sorted_matches(self, aqs: Any, root: ParsedRoot, order: SortOrder) -> list[dict[str, Any]]:
        # The key holds the whole query, sortInfo included; every change bumps the version.
        key = json.dumps(aqs, sort_keys=True)
        cached = self._query_cache.get(key)
        if cached is None or cached[0] != self._version:
            matches = sorted(self._matching(root), key=self._sort_key(order), reverse=order.reverse)
            self._query_cache = {key: (self._version, matches)}  # one query at a time is all a read needs
            return matches
        return cached[1]

    def _sort_key(self, order: SortOrder) -> Callable[[dict[str, Any]], Any]:
        if order.by == "itemid":
            return lambda item: item["itemId"]
        # Ties (one instant) are broken by item id, in the same direction as the sort.
        return lambda item: (self._edit_times[item["itemId"]], item["itemId"])

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


def _attribute_values(item: Mapping[str, Any]) -> dict[str, Any]:
    attributes = item.get("attributes")
    entries = attributes if isinstance(attributes, list) else []
    return {
        entry["attributeCode"]: entry.get("value")
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("attributeCode"), str)
    }


def _changed_attributes(before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset[str]:
    """The attribute codes whose value differs between two versions of an item (added or cleared too)."""
    old, new = _attribute_values(before), _attribute_values(after)
    return frozenset(code for code in old.keys() | new.keys() if old.get(code) != new.get(code))


def _log_entry(event: ItemEvent) -> dict[str, Any]:
    return {
        "itemId": event.item_id,
        "designCode": event.design_code,
        "action": event.action,
        "date": format_alloy_timestamp(event.date),
        "username": FAKE_USERNAME,
        "causes": [],
    }
