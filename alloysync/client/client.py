"""``AlloyClient``: the only code in alloysync that speaks HTTP.

It sends the calls alloysync needs (session, count, read, page through and edit items), turns every
failure into an ``AlloyError`` and retries transient ones by the policy in ``policy.py``; ``httpx``
and JSON exceptions never leave it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from alloysync.client.aqs import ItemQuery, build_count_aqs, build_query_aqs, count_from_answer
from alloysync.client.errors import (
    AlloyRequestError,
    AlloyResponseError,
    TransientFault,
    describe,
    error_details,
    error_for_status,
    snippet,
    unavailable_error,
)
from alloysync.client.items import AlloyItem, envelope_item, json_type, page_item
from alloysync.client.policy import RETRYABLE_STATUSES, RetryBudget, rate_limit_wait

# The package's name, as before it was split: log filters may select on it.
logger = logging.getLogger("alloysync.client")

# Alloy refuses page numbers beyond this; longer result sets are read in windows.
MAX_PAGE = 100

_USER_AGENT = "alloysync"
_ITEM_SIGNATURE_MISMATCH = "ItemSignatureMismatch"


class AlloyClient:
    """A long-lived connection to one Alloy tenant (the API key selects the tenant).

    Use as a context manager, or call ``close()``. ``requests_made`` counts every HTTP request sent,
    retries included. ``timeout`` is seconds per request; ``max_retry_seconds`` caps the time one
    call spends retrying (0: a single attempt).
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
        """Close the connection pool."""
        self._http.close()

    # --- public calls ---------------------------------------------------------------------------

    def session_me(self) -> dict[str, Any]:
        """The session of the key's user: a cheap authenticated call for connectivity checks."""
        return self._request_json("GET", "/api/session/me")

    def count_items(self, query: ItemQuery) -> int:
        """How many items ``query`` matches, by Alloy's statistics endpoint."""
        return count_from_answer(self._request_json("POST", "/api/aqs/statistics", json=build_count_aqs(query)))

    def get_item(self, item_id: str) -> AlloyItem | None:
        """The item, or None when Alloy says it does not exist (404)."""
        try:
            body = self._request_json("GET", f"/api/item/{_quote(item_id)}")
        except AlloyRequestError as exc:
            if exc.status_code == 404:
                return None
            raise
        return envelope_item(body, f"GET /api/item/{item_id}")

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
        return [page_item(raw, overall, index) for index, raw in enumerate(results)]

    def _put_item(self, item_id: str, collection: str, signature: str, attributes: Mapping[str, Any]) -> AlloyItem:
        payload = {
            "collection": collection,
            "signature": signature,
            "attributes": [{"attributeCode": code, "value": value} for code, value in attributes.items()],
        }
        body = self._request_json("PUT", f"/api/item/{_quote(item_id)}", json=payload)
        return envelope_item(body, f"PUT /api/item/{item_id}")

    def _request_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AlloyResponseError(
                f"Alloy's answer to {method} {path} is not JSON ({self._redact(snippet(response))}).",
                status_code=response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise AlloyResponseError(f"Alloy's answer to {method} {path} is {json_type(body)}, not an object.")
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A successful (2xx) response, retrying transient faults within the budget."""
        budget = RetryBudget(self.max_retry_seconds, self._sleep)
        retrying = budget.retrying(method, path)
        try:
            response = retrying(self._attempt, method, path, **kwargs)
        except TransientFault as fault:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise unavailable_error(fault, method, path, attempts, budget.elapsed) from None
        if response.is_success:
            return response
        raise error_for_status(response, method, path, self._redact)

    def _attempt(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.requests_made += 1
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientFault(f"timed out after {self.timeout:g} s ({type(exc).__name__})") from None
        except httpx.UnsupportedProtocol:
            raise AlloyRequestError(
                f"{self.base_url!r} is not an http(s) URL: check ALLOY_BASE_URL.", permanent=True
            ) from None
        except httpx.TransportError as exc:
            raise TransientFault(f"{type(exc).__name__}: {self._redact(str(exc)) or 'no detail'}") from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded: retrying won't help
            raise AlloyResponseError(
                f"{method} {path} failed: {type(exc).__name__}: {self._redact(str(exc))}"
            ) from None
        logger.debug("Alloy %s %s -> %d", method, path, response.status_code)
        if response.status_code in RETRYABLE_STATUSES:
            category, message = error_details(response, self._redact)
            raise TransientFault(
                describe(response.status_code, category, message),
                status_code=response.status_code,
                category=category,
                wait_hint=rate_limit_wait(response.headers) if response.status_code == 429 else None,
            )
        return response

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


def _quote(item_id: str) -> str:
    return urllib.parse.quote(item_id, safe="")
