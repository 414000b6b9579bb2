"""Faults the fake Alloy injects on request: latency, 5xx, 429 in each header form, hangs, bad pages.

Tests set them on ``server.faults`` while the server runs; the request handler takes them, one
request at a time, in the order of the ``take_*`` methods.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Any


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
        """The status to fail the next request with (``fail_next``, else ``error_rate``), or None."""
        with self._lock:
            if self._fail:
                return self._fail.popleft()
            if self._error_rate and self._random.random() < self._error_rate:
                return self._random.choice((500, 502, 503, 504))
            return None

    def take_rate_limit(self) -> tuple[str, float] | None:
        """(header form, seconds) when the next request is to be answered 429, else None."""
        with self._lock:
            return self._rate_limits.popleft() if self._rate_limits else None

    def take_page_fault(self, page: int) -> int | str | None:
        """The fault for query page ``page`` (a status, ``"malformed"`` or ``"broken"``), or None."""
        with self._lock:
            entry = self._pages.get(page)
            if entry is None:
                return None
            fault: int | str = entry[0]
            times: int | None = entry[1]
            if times is not None:
                entry[1] = times - 1
                if entry[1] <= 0:
                    del self._pages[page]
            return fault
