"""A fake Alloy: the subset of Alloy's REST API that alloysync uses, served on a real loopback socket.

Tests, benchmarks and the demo talk to it instead of Alloy (which nothing here can reach). It follows
``/work/shared/alloy-api.md``: Bearer auth, AQS queries with 1-based pages refused beyond 100, the
statistics count, item read and edit with signature checks, Alloy's error body, and rate-limit
headers. ``server.faults`` injects latency, 5xx, 429, hangs and malformed or broken-off pages while
it runs.

Plain standard library (no Django, no Celery). It never listens beyond loopback.
"""

from __future__ import annotations

import argparse
import copy
import hmac
import ipaddress
import json
import logging
import os
import random
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

SAMPLE_DESIGN_CODE = "designs_scheduledJobs_65f0c0ffee0000000000abcd"
TITLE_ATTRIBUTE = "attributes_itemsTitle"
SAMPLE_FLAG_ATTRIBUTE = "attributes_scheduledJobsIsJob_65f0c0ffee0000000000abce"
SAMPLE_CRON_ATTRIBUTE = "attributes_scheduledJobsCron_65f0c0ffee0000000000abcf"
SAMPLE_STEPS_ATTRIBUTE = "attributes_scheduledJobsSteps_65f0c0ffee0000000000abd0"
SAMPLE_TIMEZONE_ATTRIBUTE = "attributes_scheduledJobsTimezone_65f0c0ffee0000000000abd1"
SAMPLE_ATTRIBUTE_CODES = frozenset(
    {
        TITLE_ATTRIBUTE,
        "attributes_itemsSubtitle",
        "attributes_itemsGeometry",
        SAMPLE_FLAG_ATTRIBUTE,
        SAMPLE_CRON_ATTRIBUTE,
        SAMPLE_STEPS_ATTRIBUTE,
        SAMPLE_TIMEZONE_ATTRIBUTE,
    }
)
SAMPLE_ITEMS_PATH = Path(__file__).with_name("sample_items.json")
# Not a secret: the key the demo uses when ALLOY_API_KEY is not set.
DEMO_API_KEY = "00000000-0000-4000-8000-0000000de770"
DEFAULT_PORT = 8765

MAX_PAGE = 100
RATE_LIMIT_PER_MINUTE = 100
COLLECTIONS = frozenset({"Live", "Inventory", "Archive", "Template"})
LOCKED_CONTEXTS = frozenset({"Core", "Module"})
_ITEM_PATH = re.compile(r"^/api/item/([^/]+)$")


# --- items --------------------------------------------------------------------------------------


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
        _check_storable(item, f"{path}: item {index}")
    return data


def _check_storable(item: Any, where: str) -> None:
    # Only what the fake needs to index and filter; the rest may be as odd as a test wants.
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object.")
    if not isinstance(item.get("itemId"), str) or not item["itemId"]:
        raise ValueError(f"{where} has no string itemId.")
    if not isinstance(item.get("designCode"), str):
        raise ValueError(f"{where} ({item['itemId']}) has no string designCode.")


def _attribute_value(item: Mapping[str, Any], code: str) -> Any:
    attributes = item.get("attributes")
    if not isinstance(attributes, list):
        return None
    for entry in attributes:
        if isinstance(entry, dict) and entry.get("attributeCode") == code:
            return entry.get("value")
    return None


def _set_attributes(item: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Edit only the listed attributes; a None value clears one (Alloy then omits it)."""
    kept = [
        entry
        for entry in item.get("attributes") or []
        if not (isinstance(entry, dict) and entry.get("attributeCode") in changes)
    ]
    kept.extend({"attributeCode": code, "value": value} for code, value in changes.items() if value is not None)
    item["attributes"] = kept


# --- AQS ----------------------------------------------------------------------------------------

Predicate = Callable[[Mapping[str, Any]], bool]
Getter = Callable[[Mapping[str, Any]], Any]


class ApiError(Exception):
    """An error answer in Alloy's shape."""

    def __init__(self, status: int, category: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message


def _aqs_error(message: str) -> ApiError:
    return ApiError(400, "AqsInvalidQuery", message)


class _ParsedRoot(NamedTuple):
    design_code: str
    collections: frozenset[str]
    properties: dict[str, Any]
    predicate: Predicate


def _parse_root(body: Any, root_type: str) -> _ParsedRoot:
    node = body.get("aqs") if isinstance(body, dict) else None
    if not isinstance(node, dict) or node.get("type") != root_type:
        raise _aqs_error(f'The body must be {{"aqs": {{"type": "{root_type}", ...}}}}.')
    properties = node.get("properties")
    if not isinstance(properties, dict):
        raise _aqs_error(f"The {root_type} node has no properties object.")
    design = properties.get("dodiCode")
    if not isinstance(design, str) or not design:
        raise _aqs_error("dodiCode must be a design or interface code.")
    children = node.get("children", [])
    if not isinstance(children, list) or len(children) > 1:
        raise _aqs_error("A root node takes at most one child; combine conditions with And or Or.")
    predicate = _compile(children[0]) if children else (lambda item: True)
    return _ParsedRoot(design, _parse_collections(properties.get("collectionCode", ["Live"])), properties, predicate)


def _parse_collections(raw: Any) -> frozenset[str]:
    codes = [raw] if isinstance(raw, str) else raw
    if not isinstance(codes, list) or not codes or not all(code in COLLECTIONS for code in codes):
        raise _aqs_error(f"collectionCode must be one or more of {sorted(COLLECTIONS)}, not {raw!r}.")
    return frozenset(codes)


def _children(node: dict[str, Any], count: int | None = None) -> list[Any]:
    children = node.get("children")
    if not isinstance(children, list) or not children or (count is not None and len(children) != count):
        wanted = f"exactly {count}" if count else "at least one"
        raise _aqs_error(f"A {node.get('type')} node needs {wanted} children.")
    return children


def _compile(node: Any) -> Predicate:
    """A predicate over item dicts for one AQS condition node."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise _aqs_error("Every AQS node must be an object with a string type.")
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
    raise _aqs_error(f"The fake Alloy does not know AQS node type {kind!r}.")


def _operand(node: Any) -> Getter:
    properties = node.get("properties") if isinstance(node, dict) else None
    kind = node.get("type") if isinstance(node, dict) else None
    if kind == "Attribute" and isinstance(properties, dict) and isinstance(properties.get("attributeCode"), str):
        code = properties["attributeCode"]
        return lambda item: _attribute_value(item, code)
    if kind == "ItemProperty" and isinstance(properties, dict):
        # Alloy matches item property names case-insensitively.
        name = str(properties.get("itemPropertyName", "")).lower()
        if name in ("itemid", "designcode"):
            key = "itemId" if name == "itemid" else "designCode"
            return lambda item: item.get(key)
        raise _aqs_error(f"The fake Alloy supports ItemProperty itemId and designCode, not {name!r}.")
    raise _aqs_error("A comparison's first child must be an Attribute or ItemProperty node.")


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
        raise _aqs_error(f"A value node must be one of {sorted(_VALUE_TYPES)} with a non-empty value array.")
    return values


def _same(left: Any, right: Any) -> bool:
    # JSON true must not equal 1: compare booleans by identity.
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return left == right


def _greater(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left > right
    numbers = all(isinstance(side, int | float) and not isinstance(side, bool) for side in (left, right))
    return numbers and left > right


def _sort_reverse(properties: Mapping[str, Any]) -> bool:
    sort_info = properties.get("sortInfo") or {"itemProperty": "ItemId"}
    if not isinstance(sort_info, dict) or str(sort_info.get("itemProperty", "")).lower() != "itemid":
        raise _aqs_error("The fake Alloy sorts by ItemId only.")
    order = sort_info.get("sortOrder", "Ascending")
    if order not in ("Ascending", "Descending"):
        raise _aqs_error(f"sortOrder must be Ascending or Descending, not {order!r}.")
    return order == "Descending"


def _project(item: dict[str, Any], attributes: Any) -> dict[str, Any]:
    """The item with only the requested attributes (``["all"]``: every one)."""
    item = copy.deepcopy(item)
    if attributes in (None, ["all"]):
        return item
    if not isinstance(attributes, list) or not all(isinstance(code, str) for code in attributes):
        raise _aqs_error('attributes must be ["all"] or a list of attribute codes.')
    wanted = set(attributes)
    item["attributes"] = [
        entry
        for entry in item.get("attributes") or []
        if isinstance(entry, dict) and entry.get("attributeCode") in wanted
    ]
    return item


# --- faults -------------------------------------------------------------------------------------


class Faults:
    """Faults to inject, settable while the server runs (from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - picks fault statuses, not secrets
        self.clear()

    def clear(self) -> None:
        """Back to a healthy server."""
        with self._lock:
            self._latency = 0.0
            self._error_rate = 0.0
            self._fail: deque[int] = deque()
            self._rate_limits: deque[tuple[str, float]] = deque()
            self._hangs: deque[float] = deque()
            self._pages: dict[int, list[Any]] = {}  # page -> [fault, times left or None for always]

    @property
    def latency(self) -> float:
        """Seconds added to every response."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative.")
        with self._lock:
            self._latency = float(seconds)

    @property
    def error_rate(self) -> float:
        """The fraction of requests answered with a random 5xx."""
        with self._lock:
            return self._error_rate

    @error_rate.setter
    def error_rate(self, fraction: float) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("error_rate is a fraction between 0 and 1.")
        with self._lock:
            self._error_rate = float(fraction)

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status`` (any endpoint, before authentication)."""
        with self._lock:
            self._fail.extend([status] * count)

    def rate_limit_next(self, count: int = 1, header: str = "retry-after", seconds: float = 1.0) -> None:
        """Answer the next ``count`` requests with 429.

        ``header`` says how the wait is announced: ``"retry-after"`` (Retry-After in whole seconds,
        besides the usual X-Rate-Limit-Reset), ``"reset"`` (X-Rate-Limit-Reset ``seconds`` ahead,
        no Retry-After), or ``"none"`` (neither).
        """
        if header not in ("retry-after", "reset", "none"):
            raise ValueError(f"header must be 'retry-after', 'reset' or 'none', not {header!r}.")
        with self._lock:
            self._rate_limits.extend([(header, float(seconds))] * count)

    def hang_next(self, count: int = 1, seconds: float = 5.0) -> None:
        """Hold the next ``count`` requests for ``seconds`` before answering (client timeouts)."""
        with self._lock:
            self._hangs.extend([float(seconds)] * count)

    def fail_page(self, page_number: int, status: int | str = 500, *, times: int | None = 1) -> None:
        """Break query page ``page_number`` (in every window) ``times`` times (None: always).

        ``status`` is an HTTP status, ``"malformed"`` (200 with invalid JSON) or ``"broken"``
        (a Content-Length larger than the body sent, then the connection is closed).
        """
        if not isinstance(status, int) and status not in ("malformed", "broken"):
            raise ValueError(f"status must be an HTTP status, 'malformed' or 'broken', not {status!r}.")
        with self._lock:
            self._pages[page_number] = [status, times]

    # Consumed by the request handler, in this order.

    def take_delay(self) -> tuple[float, float]:
        """(latency, hang) for the next request; a hang of 0 means it is not held."""
        with self._lock:
            return self._latency, self._hangs.popleft() if self._hangs else 0.0

    def take_failure(self) -> int | None:
        with self._lock:
            if self._fail:
                return self._fail.popleft()
            if self._error_rate and self._random.random() < self._error_rate:
                return self._random.choice((500, 502, 503, 504))
            return None

    def take_rate_limit(self) -> tuple[str, float] | None:
        with self._lock:
            return self._rate_limits.popleft() if self._rate_limits else None

    def take_page_fault(self, page: int) -> int | str | None:
        with self._lock:
            entry = self._pages.get(page)
            if entry is None:
                return None
            fault, times = entry
            if times is not None:
                entry[1] = times - 1
                if entry[1] <= 0:
                    del self._pages[page]
            return fault


# --- the server ---------------------------------------------------------------------------------


class RequestRecord(NamedTuple):
    method: str
    path: str
    page: int | None


def format_alloy_timestamp(when: datetime) -> str:
    """Alloy's timestamp style: UTC with seven fractional digits, ``2021-03-16T11:08:08.0232125Z``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z"


def _loopback_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"The fake Alloy listens on loopback only (127.0.0.1, ::1, localhost), not {host!r}.")
    return host


class FakeAlloyServer:
    """An in-memory Alloy on a loopback port, served from a background thread.

    ``FakeAlloyServer(items, api_key=...)``; use as a context manager or call ``start()``/``stop()``.
    ``url`` is the base URL to give the client. ``designs`` adds design codes that exist without
    items (the sample design always exists); a query on any other design is refused, as Alloy would.
    """

    def __init__(
        self,
        items: Iterable[Mapping[str, Any]] | None = None,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        designs: Iterable[str] = (),
    ) -> None:
        if not api_key:
            raise ValueError("The fake Alloy needs an API key to check.")
        self.host = _loopback_host(host)
        self.port = port
        self.faults = Faults()
        self._api_key = api_key
        self._lock = threading.RLock()
        self._items: dict[str, dict[str, Any]] = {}
        # Paging through a big set re-runs one query per page: keep its sorted matches until an edit.
        self._version = 0
        self._query_cache: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._designs = {SAMPLE_DESIGN_CODE, *designs}
        self._requests: list[RequestRecord] = []
        self._minute = 0
        self._minute_count = 0
        self._stopping = threading.Event()
        # Called with the page number after each query page is computed, before it is sent: lets a
        # test edit items between pages, as Alloy users do while a sync reads.
        self.after_page: Callable[[int], None] | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        for item in items or ():
            self.put_item(item)

    def __repr__(self) -> str:
        state = self.url if self._httpd else "stopped"
        return f"FakeAlloyServer({state}, {len(self._items)} items)"

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeAlloyServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-alloy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # releases requests held by latency or hang faults
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeAlloyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("The fake Alloy is not running: call start() first.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # --- items ----------------------------------------------------------------------------------

    @property
    def items(self) -> list[dict[str, Any]]:
        """A copy of every item, by item id."""
        with self._lock:
            return [copy.deepcopy(self._items[item_id]) for item_id in sorted(self._items)]

    def get(self, item_id: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(item_id)
            return copy.deepcopy(item) if item is not None else None

    def put_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Add or replace an item, stored as given (so tests can store odd shapes)."""
        _check_storable(item, "item")
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
            _set_attributes(item, changes)
            item["signature"] = new_hex_id()
            return copy.deepcopy(item)

    def remove_item(self, item_id: str) -> None:
        with self._lock:
            self._version += 1
            del self._items[item_id]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received, faulty ones included: (method, path, page or None)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- endpoints (called from handler threads) ------------------------------------------------

    def check_auth(self, header: str | None) -> None:
        expected = f"Bearer {self._api_key}"
        if header is None or not hmac.compare_digest(header.encode(), expected.encode()):
            raise ApiError(401, "UserUnauthorized", "The API key is missing, invalid, disabled or expired.")

    def session_me(self) -> dict[str, Any]:
        return {
            "userSession": {
                "username": "fake.alloy.user",
                "customerCode": "customers_fakeAlloy_65f0c0ffee0000000000a000",
                "customerName": "Fake Alloy",
            }
        }

    def query(self, body: Any, page: int, page_size: int) -> dict[str, Any]:
        root = _parse_root(body, "Query")
        if page > MAX_PAGE:
            # Alloy's limit: longer result sets must be read in windows, not by paging further.
            raise _aqs_error(f"Page {page} is beyond the maximum of {MAX_PAGE}; filter by a sorted property.")
        reverse, attributes = _sort_reverse(root.properties), root.properties.get("attributes")
        with self._lock:  # copy the page before another thread edits an item in it
            window = self._sorted_matches(body["aqs"], root, reverse)[(page - 1) * page_size : page * page_size]
            results = [_project(item, attributes) for item in window]
        return {"page": page, "pageSize": page_size, "results": results}

    def page_served(self, page: int) -> None:
        if self.after_page is not None:
            self.after_page(page)

    def _sorted_matches(self, aqs: Any, root: _ParsedRoot, reverse: bool) -> list[dict[str, Any]]:
        key = json.dumps(aqs, sort_keys=True)
        cached = self._query_cache.get(key)
        if cached is None or cached[0] != self._version:
            matches = sorted(self._matching(root), key=lambda item: item["itemId"], reverse=reverse)
            self._query_cache = {key: (self._version, matches)}  # one query at a time is all a read needs
            return matches
        return cached[1]

    def statistics(self, body: Any) -> dict[str, Any]:
        root = _parse_root(body, "StatisticsAggregation")
        if root.properties.get("aggregationType") != "Count":
            raise _aqs_error("The fake Alloy's statistics support aggregationType Count only.")
        return {"results": [{"value": {"type": "Count", "value": len(self._matching(root))}}]}

    def get_item_body(self, item_id: str) -> dict[str, Any]:
        item = self.get(item_id)
        if item is None:
            raise ApiError(404, "ItemNotFound", f"Item {item_id} does not exist.")
        return {"item": item}

    def put_item_body(self, item_id: str, body: Any) -> dict[str, Any]:
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
            _set_attributes(item, changes)
            item["collection"] = collection or item.get("collection", "Live")
            item["signature"] = new_hex_id()
            return {"item": copy.deepcopy(item)}

    def _matching(self, root: _ParsedRoot) -> list[dict[str, Any]]:
        with self._lock:
            if root.design_code not in self._designs:
                raise _aqs_error(f"Design {root.design_code!r} does not exist.")
            return [
                item
                for item in self._items.values()
                if item["designCode"] == root.design_code
                and item.get("collection", "Live") in root.collections
                and root.predicate(item)
            ]

    def record(self, method: str, path: str, page: int | None) -> tuple[int, datetime]:
        """Log a request; returns the requests left this minute and when the minute ends."""
        now = datetime.now(UTC)
        minute = int(now.timestamp() // 60)
        with self._lock:
            self._requests.append(RequestRecord(method, path, page))
            if minute != self._minute:
                self._minute, self._minute_count = minute, 0
            self._minute_count += 1
            remaining = max(0, RATE_LIMIT_PER_MINUTE - self._minute_count)
        return remaining, datetime.fromtimestamp((minute + 1) * 60, UTC)

    def record_nothing(self) -> tuple[int, datetime]:
        """The rate-limit state for an answer to a request too broken to log."""
        now = datetime.now(UTC)
        minute = int(now.timestamp() // 60)
        with self._lock:
            used = self._minute_count if minute == self._minute else 0
        return max(0, RATE_LIMIT_PER_MINUTE - used), datetime.fromtimestamp((minute + 1) * 60, UTC)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for requests held by a hang fault

    def __init__(self, address: tuple[str, int], alloy: FakeAlloyServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.alloy = alloy
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are the point of some faults: not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        logger.exception("The fake Alloy failed to answer %s.", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its load balancer
    server_version = "FakeAlloy/1.0"
    timeout = 30  # idle keep-alive connections are closed after this
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only: headers (and so the key) are never logged.
        logger.debug("fake Alloy: " + format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, unknown method) in Alloy's error shape too.
        self.close_connection = True
        self._send_error(ApiError(code, "BadRequest" if code < 500 else "ServerError", message or "Bad request."))

    def _handle(self, method: str) -> None:
        alloy = self.server.alloy
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        raw_body = self._read_body()
        page = _first_int(params.get("page"))
        self._rate = alloy.record(method, url.path, page)
        latency, hang = alloy.faults.take_delay()
        alloy.pause(latency + hang)
        if alloy.stopping:
            self.close_connection = True
            return
        try:
            # A held request has had its fault: it must not also eat the next request's.
            if not hang and self._injected_fault(alloy):
                return
            alloy.check_auth(self.headers.get("Authorization"))
            body = self._route(alloy, method, url.path, params, raw_body)
        except ApiError as error:
            self._send_error(error)
            return
        if body is not None:
            self._send_json(200, body)

    def _injected_fault(self, alloy: FakeAlloyServer) -> bool:
        status = alloy.faults.take_failure()
        if status is not None:
            self._send_error(ApiError(status, "ServerError", "Injected failure."))
            return True
        rate_limit = alloy.faults.take_rate_limit()
        if rate_limit is None:
            return False
        header, seconds = rate_limit
        error = ApiError(429, "RateLimited", "Too many requests; try again later.")
        if header == "retry-after":
            self._send_error(error, {"Retry-After": str(max(0, round(seconds)))})
        elif header == "reset":
            reset = datetime.now(UTC) + timedelta(seconds=seconds)
            self._send_error(
                error, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": format_alloy_timestamp(reset)}
            )
        else:
            self._send_error(error, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": None})
        return True

    def _route(
        self, alloy: FakeAlloyServer, method: str, path: str, params: dict[str, list[str]], raw: bytes
    ) -> dict[str, Any] | None:
        if (method, path) == ("GET", "/api/session/me"):
            return alloy.session_me()
        if (method, path) == ("POST", "/api/aqs/query"):
            page, page_size = _paging(params)
            fault = alloy.faults.take_page_fault(page)
            if fault is not None:
                self._send_page_fault(fault, alloy.query(_json_body(raw), page, page_size))
                return None
            body = alloy.query(_json_body(raw), page, page_size)
            alloy.page_served(page)
            return body
        if (method, path) == ("POST", "/api/aqs/statistics"):
            return alloy.statistics(_json_body(raw))
        match = _ITEM_PATH.match(path)
        if match and method == "GET":
            return alloy.get_item_body(unquote(match.group(1)))
        if match and method == "PUT":
            return alloy.put_item_body(unquote(match.group(1)), _json_body(raw, "ModelValidationFailed"))
        raise ApiError(404, "ResourceNotFound", f"No such endpoint: {method} {path}.")

    def _send_page_fault(self, fault: int | str, good_body: dict[str, Any]) -> None:
        if isinstance(fault, int):
            self._send_error(ApiError(fault, "ServerError", "Injected page failure."))
        elif fault == "malformed":
            self._send_raw(200, b'{"page": 1, "pageSize": 100, "results": [{"itemId": ')
        else:  # "broken": promise the whole page, send half of it, hang up
            data = json.dumps(good_body).encode()
            self._send_raw(200, data[: len(data) // 2], content_length=len(data))
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_error(self, error: ApiError, headers: Mapping[str, str | None] | None = None) -> None:
        body = {
            "category": error.category,
            "errorCode": str(zlib.crc32(error.category.encode())),
            "errorData": None,
            "httpStatusCode": error.status,
            "message": error.message,
        }
        self._send_json(error.status, body, headers)

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str | None] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode(), headers=headers)

    def _send_raw(
        self,
        status: int,
        data: bytes,
        *,
        content_length: int | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> None:
        remaining, reset = getattr(self, "_rate", None) or self.server.alloy.record_nothing()
        merged: dict[str, str | None] = {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(data) if content_length is None else content_length),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": format_alloy_timestamp(reset),
            **(headers or {}),
        }
        try:
            self.send_response(status)
            for name, value in merged.items():
                if value is not None:  # None: a header this answer leaves out on purpose
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting; nobody to answer


def _first_int(values: Sequence[str] | None) -> int | None:
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def _paging(params: dict[str, list[str]]) -> tuple[int, int]:
    page, page_size = _first_int(params.get("page")) or 1, _first_int(params.get("pageSize")) or 100
    if page < 1 or page_size < 1:
        raise ApiError(400, "ModelValidationFailed", "page and pageSize must be positive integers.")
    return page, page_size


def _json_body(raw: bytes, category: str = "AqsInvalidQuery") -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, category, "The request body is not valid JSON.") from None


# --- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fake_alloy", description="Serve a fake Alloy API on localhost.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument(
        "--items", type=Path, default=SAMPLE_ITEMS_PATH, help="JSON file of items (default: bundled sample)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("ALLOY_API_KEY") or DEMO_API_KEY,
        help="the Bearer key to accept (default: $ALLOY_API_KEY, else the demo key)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of requests answered with a 5xx")
    return parser


def _wait_for_interrupt() -> None:
    while True:
        time.sleep(3600)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Serve until interrupted (Ctrl-C). Returns the exit status."""
    out = stdout or sys.stdout
    args = _parser().parse_args(argv)
    server = FakeAlloyServer(load_items(args.items), api_key=args.api_key, port=args.port)
    server.faults.latency = args.latency
    server.faults.error_rate = args.error_rate
    with server:
        key_note = "the demo key " + DEMO_API_KEY if args.api_key == DEMO_API_KEY else "the key given"
        out.write(
            f"Fake Alloy serving {len(server.items)} items from {args.items} at {server.url}\n"
            f"Point alloysync at it: ALLOY_BASE_URL={server.url} (accepting {key_note}).\n"
            f"Sample design: ALLOY_JOB_DESIGN={SAMPLE_DESIGN_CODE}\n"
            "Press Ctrl-C to stop.\n"
        )
        out.flush()
        try:
            _wait_for_interrupt()
        except KeyboardInterrupt:
            out.write("Stopped.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
