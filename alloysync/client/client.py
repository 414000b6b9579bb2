"""The Alloy HTTP client: the only code in alloysync that speaks HTTP.

Plain Python (no Django, no Celery), so it can be used from tasks, commands, benchmarks and tests
alike. It turns Alloy's wire format into ``AlloyItem`` values and every failure into an ``AlloyError``
that says whether a retry can help; ``httpx`` and JSON exceptions never leave this module.

Retries happen here and only here (tenacity), for transient faults: timeouts, transport errors, 5xx
and 429. Waits honour ``Retry-After``, then Alloy's ``X-Rate-Limit-Reset``, then back off
exponentially with jitter; each wait and the total time spent retrying are capped.

What we know of the API (and what is only assumed) is in ``/work/shared/alloy-api.md``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NoReturn

import httpx
import tenacity

logger = logging.getLogger(__name__)

# Alloy refuses page numbers beyond this; longer result sets are read in windows.
MAX_PAGE = 100
# No single wait longer than this, whatever the server asks for.
MAX_WAIT_SECONDS = 60.0
# Exponential backoff when the server gives no hint: 1 s, 2 s, 4 s ... plus up to 1 s of jitter.
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_JITTER_SECONDS = 1.0

_USER_AGENT = "alloysync"
_RETRYABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_ITEM_SIGNATURE_MISMATCH = "ItemSignatureMismatch"

# An ISO-8601 timestamp with any number of fractional digits; Alloy sends seven
# ("2021-03-16T11:08:08.0232125Z"), which datetime.fromisoformat rejects before Python 3.11.
_TIMESTAMP_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?\s*$",
    re.IGNORECASE,
)


# --- errors -------------------------------------------------------------------------------------


class AlloyError(Exception):
    """Talking to Alloy failed. ``permanent`` says whether retrying the same call can help."""

    default_permanent = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        category: str | None = None,
        permanent: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.category = category
        self.permanent = self.default_permanent if permanent is None else permanent


class AlloyAuthError(AlloyError):
    """401/403: the key is missing, wrong, expired, or its user may not do this."""


class AlloyRequestError(AlloyError):
    """Another 4xx: Alloy understood us and said no (bad query, unknown item, stale signature...)."""


class AlloyUnavailableError(AlloyError):
    """Timeouts, connection failures, 5xx or 429 that outlasted every retry."""

    default_permanent = False

    def __init__(self, message: str, *, attempts: int, elapsed: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.elapsed = elapsed


class AlloyResponseError(AlloyError):
    """Alloy answered, but not with what we can read (not JSON, wrong shape)."""


class _TransientFault(Exception):
    """One attempt failed in a way a retry may fix; internal to the retry loop."""

    def __init__(
        self,
        cause: str,
        *,
        status_code: int | None = None,
        category: str | None = None,
        wait_hint: float | None = None,
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status_code = status_code
        self.category = category
        self.wait_hint = wait_hint


# --- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlloyItem:
    """The parts of an Alloy item that alloysync uses. ``attributes`` maps attributeCode to value."""

    item_id: str
    design_code: str
    collection: str
    signature: str
    attributes: Mapping[str, Any] = field(hash=False)

    def attribute(self, code: str) -> Any | None:
        """The attribute's value, or None when the item has no value for it (Alloy omits those)."""
        return self.attributes.get(code)


@dataclass(frozen=True)
class ItemQuery:
    """Which items to read: a design (or interface), a collection, and an optional Boolean flag."""

    design_code: str
    collection: str = "Live"
    flag_attribute: str | None = None


class _ShapeError(ValueError):
    """A JSON value did not have the shape we rely on."""


def parse_item(data: Any) -> AlloyItem:
    """An ``AlloyItem`` from Alloy's item JSON; raises ``_ShapeError`` naming what is wrong.

    Strict about what we use, tolerant of the rest: Alloy adds and drops fields between versions
    (icon, colour, start/end...), so unknown fields are ignored and optional ones may be missing.
    """
    if not isinstance(data, dict):
        raise _ShapeError(f"item is {_json_type(data)}, not an object")
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


def _optional_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _ShapeError(f"{key} is {_json_type(value)}, not a string")
    return value


def _parse_attributes(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, list):
        raise _ShapeError(f"attributes is {_json_type(raw)}, not a list")
    attributes: dict[str, Any] = {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("attributeCode"), str):
            raise _ShapeError(f"attributes[{index}] is not an object with a string attributeCode")
        attributes[entry["attributeCode"]] = entry.get("value")
    return attributes


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


# --- AQS ----------------------------------------------------------------------------------------


def _value_node(node_type: str, value: Any) -> dict[str, Any]:
    # Alloy's value nodes always carry an array, even for a single value.
    return {"type": node_type, "properties": {"value": [value]}}


def _conditions(query: ItemQuery, after_item_id: str | None) -> list[dict[str, Any]]:
    conditions: list[dict[str, Any]] = []
    if query.flag_attribute:
        attribute = {"type": "Attribute", "properties": {"attributeCode": query.flag_attribute}}
        conditions.append({"type": "Equals", "children": [attribute, _value_node("Boolean", True)]})
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


def build_query_aqs(query: ItemQuery, *, after_item_id: str | None = None) -> dict[str, Any]:
    """The AQS body for one window of ``query``, sorted by item id, after ``after_item_id`` if given."""
    properties = {
        "dodiCode": query.design_code,
        "collectionCode": [query.collection],
        "attributes": ["all"],
        "sortInfo": {"itemProperty": "ItemId", "sortOrder": "Ascending"},
    }
    return {"aqs": {"type": "Query", "properties": properties, "children": _root_children(query, after_item_id)}}


def build_count_aqs(query: ItemQuery) -> dict[str, Any]:
    """The AQS body counting the items ``query`` matches."""
    properties = {
        "dodiCode": query.design_code,
        "collectionCode": [query.collection],
        "aggregationType": "Count",
    }
    return {
        "aqs": {
            "type": "StatisticsAggregation",
            "properties": properties,
            "children": _root_children(query, None),
        }
    }


# --- rate-limit headers -------------------------------------------------------------------------


def parse_alloy_timestamp(text: str) -> datetime | None:
    """An aware datetime from an ISO-8601 timestamp with any number of fractional digits, else None.

    Fractions beyond microseconds are truncated; a timestamp without a zone is taken as UTC.
    """
    match = _TIMESTAMP_RE.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = "+00:00" if zone is None or zone.upper() == "Z" else zone
    base = f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro:06d}{offset}"
    try:
        return datetime.fromisoformat(base)
    except ValueError:  # e.g. month 13: shaped like a timestamp but not one
        return None


def _retry_after_seconds(value: str, now: datetime) -> float | None:
    """``Retry-After`` as seconds: either delay-seconds or an HTTP date (RFC 9110)."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def rate_limit_wait(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds a 429 asks us to wait, or None when the response gives no usable hint."""
    now = now or datetime.now(UTC)
    retry_after = headers.get("retry-after")
    if retry_after:
        seconds = _retry_after_seconds(retry_after, now)
        if seconds is not None:
            return seconds
    reset = headers.get("x-rate-limit-reset")
    when = parse_alloy_timestamp(reset) if reset else None
    if when is None:
        return None
    seconds = (when - now).total_seconds()
    # A reset already in the past means our clocks disagree: fall back to backing off.
    return seconds if seconds > 0 else None


# --- retry policy -------------------------------------------------------------------------------


class _RetryBudget:
    """Tenacity's stop/wait/sleep for one call, capping each wait and the total time spent.

    Elapsed time counts real time outside sleeps plus the waits asked for, so an injected fake
    ``sleep`` (tests) sees the same budget as real time.
    """

    def __init__(self, max_seconds: float, sleep: Callable[[float], None]) -> None:
        self.max_seconds = max_seconds
        self._sleep = sleep
        self._started = time.monotonic()
        self._real_slept = 0.0
        self._asked_slept = 0.0
        self._backoff = tenacity.wait_exponential_jitter(
            max=MAX_WAIT_SECONDS, jitter=BACKOFF_JITTER_SECONDS, multiplier=BACKOFF_INITIAL_SECONDS
        )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started - self._real_slept + self._asked_slept

    def sleep(self, seconds: float) -> None:
        started = time.monotonic()
        self._sleep(float(seconds))
        self._real_slept += time.monotonic() - started
        self._asked_slept += float(seconds)

    def wait(self, state: tenacity.RetryCallState) -> float:
        fault = state.outcome.exception() if state.outcome else None
        hint = fault.wait_hint if isinstance(fault, _TransientFault) else None
        seconds = self._backoff(state) if hint is None else hint
        return min(seconds, MAX_WAIT_SECONDS)

    def stop(self, state: tenacity.RetryCallState) -> bool:
        # Give up rather than start a wait that would end beyond the budget.
        return self.elapsed + state.upcoming_sleep > self.max_seconds


# --- the client ---------------------------------------------------------------------------------


class AlloyClient:
    """A long-lived connection to one Alloy tenant (the API key selects the tenant).

    Use as a context manager, or call ``close()``. ``requests_made`` counts every HTTP request sent,
    retries included.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        page_size: int = 100,
        max_retry_seconds: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("The Alloy API key is empty.")
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}.")
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.timeout = timeout
        self.max_retry_seconds = max_retry_seconds
        self.requests_made = 0
        self._api_key = api_key
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            # Bearer only: the ?token= parameter and Token: header were switched off in 2025.
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
            },
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"AlloyClient(base_url={self.base_url!r}, page_size={self.page_size}, timeout={self.timeout})"

    def __enter__(self) -> AlloyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- public calls ---------------------------------------------------------------------------

    def session_me(self) -> dict[str, Any]:
        """The session of the key's user: a cheap authenticated call for connectivity checks."""
        return self._request_json("GET", "/api/session/me")

    def count_items(self, query: ItemQuery) -> int:
        """How many items ``query`` matches, by Alloy's statistics endpoint."""
        body = self._request_json("POST", "/api/aqs/statistics", json=build_count_aqs(query))
        try:
            count = body["results"][0]["value"]["value"]
        except (KeyError, IndexError, TypeError):
            raise AlloyResponseError("Alloy's count response has no results[0].value.value.") from None
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int):
            raise AlloyResponseError(f"Alloy's count is {_json_type(count)}, not a whole number.")
        return count

    def get_item(self, item_id: str) -> AlloyItem | None:
        """The item, or None when Alloy says it does not exist (404)."""
        try:
            body = self._request_json("GET", f"/api/item/{_quote(item_id)}")
        except AlloyRequestError as exc:
            if exc.status_code == 404:
                return None
            raise
        return self._item_from_envelope(body, f"GET /api/item/{item_id}")

    def update_item(self, item_id: str, *, collection: str, signature: str, attributes: Mapping[str, Any]) -> AlloyItem:
        """Edit the listed attributes; returns the item with its new signature.

        The signature changes on every edit, including edits to attributes we never read, so a stale
        one is expected now and then: re-read the item and try once more with the fresh signature.
        """
        try:
            return self._put_item(item_id, collection, signature, attributes)
        except AlloyRequestError as exc:
            if exc.category != _ITEM_SIGNATURE_MISMATCH:
                raise
            logger.info("Alloy item %s changed since it was read; re-reading and retrying once.", item_id)
        fresh = self.get_item(item_id)
        if fresh is None:
            raise AlloyRequestError(
                f"Alloy item {item_id} was deleted while it was being updated.",
                status_code=404,
                category="ItemNotFound",
            )
        return self._put_item(item_id, collection, fresh.signature, attributes)

    def iter_items(self, query: ItemQuery, *, on_page: Callable[[int, int], None] | None = None) -> Iterator[AlloyItem]:
        """Every item ``query`` matches, in item id order, each once, reading one page at a time.

        Pages beyond 100 are refused by Alloy, so after page 100 the read continues in a new window
        (page 1 again) of items whose id is greater than the last one seen. Items edited during the
        read can shift between pages; one seen twice is yielded once. ``on_page(pages, items)`` is
        called after each page with the pages read and items yielded so far.
        """
        seen: set[str] = set()  # ids only: ~100 bytes an item, while items themselves are not kept
        pages_read = 0
        window_after: str | None = None
        while True:
            last_id = window_after
            for page in range(1, MAX_PAGE + 1):
                pages_read += 1
                results = self._query_page(query, page, window_after, pages_read)
                yield from _unseen(results, seen)
                if on_page is not None:
                    on_page(pages_read, len(seen))
                if len(results) < self.page_size:
                    return
                last_id = max(last_id or "", *(item.item_id for item in results))
            window_after = last_id
            logger.debug("Read %d pages of %s; continuing after item %s.", pages_read, query.design_code, last_id)

    # --- internals ------------------------------------------------------------------------------

    def _query_page(self, query: ItemQuery, page: int, after: str | None, overall: int) -> list[AlloyItem]:
        params = {"page": page, "pageSize": self.page_size}
        body = self._request_json(
            "POST", "/api/aqs/query", params=params, json=build_query_aqs(query, after_item_id=after)
        )
        results = body.get("results")
        if not isinstance(results, list):
            raise AlloyResponseError(f"Alloy's page {overall} of {query.design_code} has no results list.")
        return [self._page_item(raw, overall, index) for index, raw in enumerate(results)]

    @staticmethod
    def _page_item(raw: Any, page: int, index: int) -> AlloyItem:
        try:
            return parse_item(raw)
        except _ShapeError as exc:
            item_id = raw.get("itemId") if isinstance(raw, dict) else None
            named = f"item {index}" + (f" (id {item_id!r})" if isinstance(item_id, str) and item_id else "")
            raise AlloyResponseError(f"Alloy sent a malformed item on page {page}, {named}: {exc}.") from None

    def _put_item(self, item_id: str, collection: str, signature: str, attributes: Mapping[str, Any]) -> AlloyItem:
        payload = {
            "collection": collection,
            "signature": signature,
            "attributes": [{"attributeCode": code, "value": value} for code, value in attributes.items()],
        }
        body = self._request_json("PUT", f"/api/item/{_quote(item_id)}", json=payload)
        return self._item_from_envelope(body, f"PUT /api/item/{item_id}")

    @staticmethod
    def _item_from_envelope(body: dict[str, Any], call: str) -> AlloyItem:
        try:
            return parse_item(body.get("item"))
        except _ShapeError as exc:
            raise AlloyResponseError(f"Alloy's answer to {call} holds a malformed item: {exc}.") from None

    def _request_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AlloyResponseError(
                f"Alloy's answer to {method} {path} is not JSON ({self._redact(_snippet(response))}).",
                status_code=response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise AlloyResponseError(f"Alloy's answer to {method} {path} is {_json_type(body)}, not an object.")
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A successful (2xx) response, retrying transient faults within the budget."""
        budget = _RetryBudget(self.max_retry_seconds, self._sleep)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_TransientFault),
            wait=budget.wait,
            stop=budget.stop,
            sleep=budget.sleep,
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        try:
            response = retrying(self._attempt, method, path, **kwargs)
        except _TransientFault as fault:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise self._unavailable(fault, method, path, attempts, budget.elapsed) from None
        if response.is_success:
            return response
        self._raise_for_status(response, method, path)

    def _attempt(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.requests_made += 1
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise _TransientFault(f"timed out after {self.timeout:g} s ({type(exc).__name__})") from None
        except httpx.UnsupportedProtocol:
            raise AlloyRequestError(
                f"{self.base_url!r} is not an http(s) URL: check ALLOY_BASE_URL.", permanent=True
            ) from None
        except httpx.TransportError as exc:
            raise _TransientFault(f"{type(exc).__name__}: {self._redact(str(exc)) or 'no detail'}") from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded: retrying won't help
            raise AlloyResponseError(
                f"{method} {path} failed: {type(exc).__name__}: {self._redact(str(exc))}"
            ) from None
        logger.debug("Alloy %s %s -> %d", method, path, response.status_code)
        if response.status_code in _RETRYABLE_STATUSES:
            category, message = self._error_details(response)
            raise _TransientFault(
                _describe(response.status_code, category, message),
                status_code=response.status_code,
                category=category,
                wait_hint=rate_limit_wait(response.headers) if response.status_code == 429 else None,
            )
        return response

    def _raise_for_status(self, response: httpx.Response, method: str, path: str) -> NoReturn:
        status = response.status_code
        category, message = self._error_details(response)
        detail = _describe(status, category, message)
        if status in (401, 403):
            raise AlloyAuthError(
                f"Alloy refused {method} {path} ({detail}). Check ALLOY_API_KEY, and that the key's user "
                "can read the design (and edit its items, for updates).",
                status_code=status,
                category=category,
            )
        if 400 <= status < 500:
            hint = " Check ALLOY_JOB_DESIGN and the attribute codes (ALLOY_*_ATTRIBUTE)." if "/aqs/" in path else ""
            raise AlloyRequestError(
                f"Alloy rejected {method} {path} ({detail}).{hint}", status_code=status, category=category
            )
        # 1xx/3xx: we follow no redirects (they could carry the key elsewhere) and expect none.
        location = response.headers.get("location", "")
        raise AlloyResponseError(
            f"Alloy answered {method} {path} with HTTP {status}{f' to {location}' if location else ''}; "
            "check ALLOY_BASE_URL.",
            status_code=status,
        )

    def _error_details(self, response: httpx.Response) -> tuple[str | None, str | None]:
        """Alloy's error ``category`` and ``message``, when the body is its error JSON."""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, self._redact(_snippet(response)) or None
        if not isinstance(body, dict):
            return None, None
        category, message = body.get("category"), body.get("message")
        return (
            category if isinstance(category, str) and category else None,
            self._redact(message) if isinstance(message, str) and message else None,
        )

    def _unavailable(
        self, fault: _TransientFault, method: str, path: str, attempts: int, elapsed: float
    ) -> AlloyUnavailableError:
        return AlloyUnavailableError(
            f"Alloy is unavailable: {method} {path} gave up after {attempts} "
            f"{'attempt' if attempts == 1 else 'attempts'} over {elapsed:.1f} s; last cause: {fault.cause}.",
            attempts=attempts,
            elapsed=elapsed,
            status_code=fault.status_code,
            category=fault.category,
        )

    def _log_retry(self, method: str, path: str, state: tenacity.RetryCallState) -> None:
        fault = state.outcome.exception() if state.outcome else None
        cause = fault.cause if isinstance(fault, _TransientFault) else repr(fault)
        logger.warning(
            "Alloy %s %s failed (%s); retrying in %.1f s (attempt %d).",
            method,
            path,
            cause,
            state.upcoming_sleep,
            state.attempt_number + 1,
        )

    def _redact(self, text: str) -> str:
        # Belt and braces: nothing we build contains the key, but server text and httpx messages are
        # not ours; make sure neither can carry it into logs or exceptions.
        return text.replace(self._api_key, "[redacted]")


def _unseen(items: list[AlloyItem], seen: set[str]) -> Iterator[AlloyItem]:
    # Offset paging over a changing set can show an item on two pages: yield it once.
    for item in items:
        if item.item_id not in seen:
            seen.add(item.item_id)
            yield item


def _describe(status: int, category: str | None, message: str | None) -> str:
    """``HTTP 400 AqsInvalidQuery: <Alloy's message>``, leaving out what the body did not say."""
    text = f"HTTP {status}"
    if category:
        text += f" {category}"
    return f"{text}: {message}" if message else text


def _quote(item_id: str) -> str:
    return urllib.parse.quote(item_id, safe="")


def _snippet(response: httpx.Response, limit: int = 80) -> str:
    text = response.content[:limit].decode("utf-8", "replace").strip()
    return repr(text) if text else "empty body"
