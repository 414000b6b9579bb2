"""``AlloyClient``: the only code in alloysync that speaks HTTP.

It sends the calls alloysync needs (session, count, read, page through and edit items), turns every
failure into an ``AlloyError`` and retries transient ones by the policy in ``policy.py``; ``httpx``
and JSON exceptions never leave it. Each request has one deadline for all of it (``transport.py``),
and each answer is read and parsed within bounds (``answers.py``).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from alloysync.client.answers import MAX_ANSWER_BYTES, Answer, error_details, parse_json, read_answer
from alloysync.client.aqs import ItemQuery, build_count_aqs, build_query_aqs, count_from_answer
from alloysync.client.errors import (
    AlloyError,
    AlloyRequestError,
    AlloyResponseError,
    TransientFault,
    describe,
    error_for_status,
    unavailable_error,
    unreachable_error,
)
from alloysync.client.items import AlloyItem, envelope_item, json_type, page_item
from alloysync.client.pacing import LocalPacer, Pacer, clamp_wait, endpoint_key, read_rate_limit
from alloysync.client.policy import RETRYABLE_STATUSES, UNREACHED_RETRY_SECONDS, RetryBudget, ignored_hint, retry_hint
from alloysync.client.reach import checked_base_url, checked_settings, connect_cause
from alloysync.client.transport import DeadlineTransport, request_deadline

# The package's name, as before it was split: log filters may select on it.
logger = logging.getLogger("alloysync.client")

# Alloy refuses page numbers beyond this; longer result sets are read in windows.
MAX_PAGE = 100

_USER_AGENT = "alloysync"
_ITEM_SIGNATURE_MISMATCH = "ItemSignatureMismatch"
_ITEM_NOT_FOUND = "ItemNotFound"


class AlloyClient:
    """A long-lived connection to one Alloy tenant (the API key selects the tenant).

    Use as a context manager, or call ``close()``. ``requests_made`` counts every HTTP request sent,
    retries included; ``paced_seconds`` and ``paced_requests`` add up the waits the pacer asked for
    before sending, and how many requests waited.

    - ``timeout``: seconds one request may take in all (connect, send, headers and body).
    - ``max_retry_seconds``: how long one call may spend retrying transient faults (0: one attempt).
    - ``max_answer_bytes``: the most one answer may hold once decompressed.
    - ``fail_fast``: for runs by hand. A host this client has never reached (a name that does not
      resolve, a refused or unanswered connection, a failed TLS handshake) fails at once with
      ``AlloyUnreachableError``; otherwise such failures are retried for ``UNREACHED_RETRY_SECONDS``
      at most. Once Alloy has answered, connection failures are transient and get the whole budget.
    - ``pacer``: slows requests down by Alloy's rate-limit headers before it answers 429 (``pacing.py``);
      a ``LocalPacer`` of its own when None. Pass one shared by the deployment to share the budget.
      Pacing waits go through ``sleep`` and do not count against ``max_retry_seconds``.
    - ``on_response(endpoint, status)``: told of every attempt, retries included: the path template
      (``/api/item/{id}``) and the HTTP status as text, or ``"error"`` when no answer came (metrics).

    ``AlloyError`` (naming the setting) when a setting cannot work: an empty key or one an HTTP
    header cannot carry, a base URL that is not http(s), a page size or timeout out of range.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        page_size: int = 100,
        max_retry_seconds: float = 120.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        fail_fast: bool = False,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
        on_response: Callable[[str, str], None] | None = None,
    ) -> None:
        checked_settings(api_key, timeout=timeout, page_size=page_size, max_answer_bytes=max_answer_bytes)
        url = checked_base_url(base_url)
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.timeout = timeout
        self.max_retry_seconds = max_retry_seconds
        self.max_answer_bytes = max_answer_bytes
        self.fail_fast = fail_fast
        self.requests_made = 0
        self.paced_seconds = 0.0
        self.paced_requests = 0
        # Seconds asked of ``sleep`` beyond those really slept: an injected sleep (tests) moves the
        # default pacer's clock as a real one would, as the retry budget counts it (policy.py).
        self._unslept = 0.0
        self.pacer: Pacer = pacer if pacer is not None else LocalPacer(clock=self._pacing_clock)
        self._host, self._port = url.host, url.port or (443 if url.scheme == "https" else 80)
        self._reached = False  # whether any answer has come back: then the host and port are right
        self._api_key = api_key
        self._injected_sleep = sleep
        self._on_response = on_response
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport or DeadlineTransport(self.base_url),
            # Bearer only: the ?token= parameter and Token: header were switched off in 2025.
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                # Only what answers.py decodes, with a cap on each step; not br or zstd.
                "Accept-Encoding": "gzip, deflate",
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
        """The item, or None when Alloy says it does not exist: a 404 whose error category is
        ``ItemNotFound``.

        Any other 404 (a proxy's or a maintenance page, a wrong base path) raises AlloyRequestError:
        callers remove a job for "does not exist", so only Alloy's own word may say it.
        """
        try:
            body = self._request_json("GET", f"/api/item/{_quote(item_id)}")
        except AlloyRequestError as exc:
            if item_not_found(exc):
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
        answer = self._request(method, path, **kwargs)
        body = parse_json(answer.content, f"{method} {path}", self._redact)
        if not isinstance(body, dict):
            raise AlloyResponseError(f"Alloy's answer to {method} {path} is {json_type(body)}, not an object.")
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> Answer:
        """A successful (2xx) answer, retrying transient faults within the budget."""
        unreached_seconds = 0.0 if self.fail_fast else UNREACHED_RETRY_SECONDS
        budget = RetryBudget(self.max_retry_seconds, self._sleep, unreached_seconds=unreached_seconds)
        retrying = budget.retrying(method, path)
        try:
            answer: Answer = retrying(self._paced_attempt, budget, method, path, **kwargs)
        except TransientFault as fault:
            attempts = retrying.statistics.get("attempt_number", 1)
            if fault.unreached:
                raise unreachable_error(fault, self._host, self._port, attempts, budget.elapsed) from None
            raise unavailable_error(fault, method, path, attempts, budget.elapsed, budget.gave_up) from None
        if answer.is_success:
            return answer
        details = error_details(answer, f"{method} {path}", self._redact)
        raise error_for_status(answer, method, path, details, self._redact)

    def _paced_attempt(self, budget: RetryBudget, method: str, path: str, **kwargs: Any) -> Answer:
        endpoint = endpoint_key(method, path)
        wait = clamp_wait(self.pacer.before(endpoint))
        if wait > 0:
            logger.debug("Pacing %s: waiting %.2f s to stay inside Alloy's rate limit.", endpoint, wait)
            budget.pause(wait)
            self.paced_seconds += wait
            self.paced_requests += 1
        return self._attempt(endpoint, method, path, **kwargs)

    def _attempt(self, endpoint: str, method: str, path: str, **kwargs: Any) -> Answer:
        self.requests_made += 1
        try:
            answer = self._exchange_checked(method, path, **kwargs)
        except BaseException:
            self._tell(endpoint, "error")  # no answer (or none that could be read): a transport failure
            raise
        self._tell(endpoint, str(answer.status_code))
        return self._answered(answer, endpoint, method, path)

    def _exchange_checked(self, method: str, path: str, **kwargs: Any) -> Answer:
        """One exchange, its httpx errors translated: transient ones to TransientFault."""
        try:
            return self._exchange(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            cause = self._redact(connect_cause(exc, self._host, self.timeout))
            raise TransientFault(cause, unreached=not self._reached) from None
        except httpx.TimeoutException as exc:
            raise TransientFault(f"timed out after {self.timeout:g} s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientFault(f"{type(exc).__name__}: {self._redact(str(exc)) or 'no detail'}") from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded: retrying won't help
            raise AlloyResponseError(
                f"{method} {path} failed: {type(exc).__name__}: {self._redact(str(exc))}"
            ) from None

    def _answered(self, answer: Answer, endpoint: str, method: str, path: str) -> Answer:
        """``answer`` if it is final; TransientFault if its status is worth a retry."""
        self._reached = True
        logger.debug("Alloy %s %s -> %d", method, path, answer.status_code)
        # Every answer, 2xx to 5xx, says what is left of the endpoint's window.
        remaining, reset_at = read_rate_limit(answer.headers)
        if remaining is not None or reset_at is not None:
            self.pacer.after(endpoint, remaining, reset_at)
        if answer.status_code in RETRYABLE_STATUSES:
            category, message = error_details(answer, f"{method} {path}", self._redact)
            hint = retry_hint(answer.status_code, answer.headers)
            raise TransientFault(
                describe(answer.status_code, category, message)
                + ignored_hint(answer.status_code, answer.headers, hint, self._redact),
                status_code=answer.status_code,
                category=category,
                wait_hint=hint,
            )
        return answer

    def _exchange(self, method: str, path: str, **kwargs: Any) -> Answer:
        """One request and its whole answer, all within ``timeout`` seconds; httpx's errors propagate."""
        with request_deadline(self.timeout):
            request = self._http.build_request(method, path, **kwargs)
            response = self._http.send(request, stream=True)
            try:
                return read_answer(response, f"{method} {path}", self.max_answer_bytes)
            finally:
                response.close()

    def _tell(self, endpoint: str, status: str) -> None:
        if self._on_response is not None:
            self._on_response(endpoint.split(" ", 1)[1], status)  # "GET /api/item/{id}": the path template

    def _sleep(self, seconds: float) -> None:
        started = time.monotonic()
        self._injected_sleep(seconds)
        self._unslept += max(0.0, seconds - (time.monotonic() - started))

    def _pacing_clock(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._unslept)

    def _redact(self, text: str) -> str:
        # Belt and braces: nothing we build contains the key, but server text and httpx messages are
        # not ours; make sure neither can carry it into logs or exceptions.
        return text.replace(self._api_key, "[redacted]")


def item_not_found(error: AlloyError) -> bool:
    """Whether ``error`` is Alloy saying the item does not exist (404, category ``ItemNotFound``)."""
    return error.status_code == 404 and error.category == _ITEM_NOT_FOUND


def _unseen(items: list[AlloyItem], seen: set[str]) -> Iterator[AlloyItem]:
    # Offset paging over a changing set can show an item on two pages: yield it once.
    for item in items:
        if item.item_id not in seen:
            seen.add(item.item_id)
            yield item


def _quote(item_id: str) -> str:
    return urllib.parse.quote(item_id, safe="")
