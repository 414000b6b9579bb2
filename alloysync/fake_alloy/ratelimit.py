"""Alloy's rate limit: requests counted per endpoint, per clock minute, announced in two headers.

Every answer carries ``X-Rate-Limit-Remaining`` (requests left in this endpoint's window) and
``X-Rate-Limit-Reset`` (when the window ends: the next whole minute). Unless a limit is enforced the
count is against Alloy's historical 100 a minute, for the headers only.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

# Alloy's documented limit, per endpoint per minute: what the headers count against when none is enforced.
RATE_LIMIT_PER_MINUTE = 100

# Paths that name one thing: the thing is not part of the endpoint (Alloy limits "GET /api/item/{id}").
_TEMPLATES = (
    (re.compile(r"^/api/item/[^/]+$"), "/api/item/{id}"),
    (re.compile(r"^/api/item-log/design/[^/]+$"), "/api/item-log/design/{code}"),
)


def endpoint_key(method: str, path: str) -> str:
    """The endpoint a request counts against: ``"GET /api/item/{id}"``, ``"POST /api/aqs/query"``.

    ``path`` may carry a query string; it is not part of the endpoint.
    """
    path = urlsplit(path).path
    for pattern, template in _TEMPLATES:
        if pattern.match(path):
            path = template
            break
    return f"{method.upper()} {path}"


class RateState(NamedTuple):
    """One endpoint's window after a request: requests left, when the window ends, and whether
    this request went beyond an enforced limit (answer 429, do nothing)."""

    remaining: int
    reset: datetime
    limited: bool


class RateLimiter:
    """Counts requests per endpoint in fixed windows of ``window`` seconds (a clock minute by default).

    ``limit`` None: never refuses (the headers count against ``RATE_LIMIT_PER_MINUTE``). Thread-safe.
    ``clock`` returns seconds since the epoch; windows start at whole multiples of ``window``.
    """

    def __init__(
        self, limit: int | None = None, *, window: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        if limit is not None and limit < 0:
            raise ValueError("rate_limit cannot be negative.")
        if window <= 0:
            raise ValueError("rate_window must be a positive number of seconds.")
        self.limit = limit
        self.window = float(window)
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}  # endpoint -> (window index, requests in it)
        self._refused: Counter[str] = Counter()

    def count(self, endpoint: str) -> RateState:
        """Count a request to ``endpoint``; its state, ``limited`` when beyond an enforced limit."""
        index = self._window_index()
        with self._lock:
            seen_index, used = self._counts.get(endpoint, (index, 0))
            used = (used if seen_index == index else 0) + 1
            self._counts[endpoint] = (index, used)
            limited = self.limit is not None and used > self.limit
            if limited:
                self._refused[endpoint] += 1
        return RateState(max(0, self._ceiling - used), self._window_end(index), limited)

    def peek(self, endpoint: str | None = None) -> RateState:
        """The state of ``endpoint`` (None: one never called) without counting a request."""
        index = self._window_index()
        with self._lock:
            seen_index, used = self._counts.get(endpoint or "", (index, 0))
        used = used if seen_index == index else 0
        return RateState(max(0, self._ceiling - used), self._window_end(index), False)

    @property
    def refused(self) -> dict[str, int]:
        """How many requests were answered 429 for going beyond the limit, per endpoint."""
        with self._lock:
            return dict(self._refused)

    @property
    def _ceiling(self) -> int:
        return RATE_LIMIT_PER_MINUTE if self.limit is None else self.limit

    def _window_index(self) -> int:
        return int(self._clock() // self.window)

    def _window_end(self, index: int) -> datetime:
        return datetime.fromtimestamp((index + 1) * self.window, UTC)
