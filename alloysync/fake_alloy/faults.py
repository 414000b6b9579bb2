"""Faults the fake Alloy injects on request: latency, 5xx, 429 in each header form, hangs, trickled
answers, and pages that are malformed, broken off, or built to exhaust a client (too deep, too big
once decompressed, numbers no parser should take).

Tests set them on ``server.faults`` while the server runs; the request handler takes them, one
request at a time, in the order of the ``take_*`` methods.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Any, NamedTuple

# What ``fail_page`` can do to a page besides answering with an HTTP status:
PAGE_FAULTS = {
    "malformed": "200 with JSON that breaks off",
    "broken": "a Content-Length larger than the body sent, then the connection closed",
    "deep": "200 with JSON nested 100,000 levels deep",
    "huge-number": "200 with a 5,000-digit integer in it",
    "nan": "200 with the first item's attributes NaN, Infinity or -Infinity (Python reads them; JSON has none)",
    "gzip-bomb": "200, gzip-encoded: about 300 KB that inflate to 300 MiB of JSON",
    "oversize": "200 with 40 MiB of plain JSON",
}


class Trickle(NamedTuple):
    """An answer sent a byte at a time, ``interval`` seconds apart; the status line and headers too if ``headers``."""

    interval: float
    headers: bool


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
            self._gzip = False
            self._error_rate = 0.0
            self._fail: deque[tuple[int, str | None]] = deque()
            self._rate_limits: deque[tuple[str, float, str | None]] = deque()
            self._hangs: deque[float] = deque()
            self._trickles: deque[Trickle] = deque()
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
    def gzip(self) -> bool:
        """Whether answers are gzip-compressed for clients that accept it, as a load balancer may do."""
        with self._lock:
            return self._gzip

    @gzip.setter
    def gzip(self, on: bool) -> None:
        with self._lock:
            self._gzip = bool(on)

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

    def fail_next(self, count: int = 1, status: int = 503, *, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (any endpoint, before authentication).

        ``retry_after``, when given, is sent as the Retry-After header exactly as written.
        """
        with self._lock:
            self._fail.extend([(status, retry_after)] * count)

    def rate_limit_next(
        self, count: int = 1, header: str = "retry-after", seconds: float = 1.0, *, retry_after: str | None = None
    ) -> None:
        """Answer the next ``count`` requests with 429.

        ``header`` says how the wait is announced: ``"retry-after"`` (Retry-After in whole seconds,
        besides the usual X-Rate-Limit-Reset), ``"reset"`` (X-Rate-Limit-Reset ``seconds`` ahead,
        no Retry-After), or ``"none"`` (neither). ``retry_after`` sends the Retry-After header with any
        text, exactly as written (``"-1"``, ``"NaN"``, a date in the past...): besides
        X-Rate-Limit-Reset with ``"retry-after"``, alone with ``"none"``.
        """
        if header not in ("retry-after", "reset", "none"):
            raise ValueError(f"header must be 'retry-after', 'reset' or 'none', not {header!r}.")
        if retry_after is not None and header == "reset":
            raise ValueError("retry_after is the Retry-After header's text: use it with 'retry-after' or 'none'.")
        with self._lock:
            self._rate_limits.extend([(header, float(seconds), retry_after)] * count)

    def hang_next(self, count: int = 1, seconds: float = 5.0) -> None:
        """Hold the next ``count`` requests for ``seconds`` before answering (client timeouts)."""
        with self._lock:
            self._hangs.extend([float(seconds)] * count)

    def trickle_next(self, count: int = 1, interval: float = 2.0, *, headers: bool = False) -> None:
        """Send the next ``count`` answers a byte every ``interval`` seconds (the body; with ``headers``,
        the status line and headers too), so no single read waits long while the answer takes ages."""
        if interval <= 0:
            raise ValueError("interval must be positive.")
        with self._lock:
            self._trickles.extend([Trickle(float(interval), headers)] * count)

    def fail_page(self, page_number: int, status: int | str = 500, *, times: int | None = 1) -> None:
        """Break query page ``page_number`` (in every window) ``times`` times (None: always).

        ``status`` is an HTTP status or one of ``PAGE_FAULTS``: ``"malformed"``, ``"broken"``,
        ``"deep"``, ``"huge-number"``, ``"nan"``, ``"gzip-bomb"``, ``"oversize"``.
        """
        if not isinstance(status, int) and status not in PAGE_FAULTS:
            raise ValueError(f"status must be an HTTP status or one of {sorted(PAGE_FAULTS)}, not {status!r}.")
        with self._lock:
            self._pages[page_number] = [status, times]

    # Consumed by the request handler, in this order.

    def take_delay(self) -> tuple[float, float]:
        """(latency, hang) for the next request; a hang of 0 means it is not held."""
        with self._lock:
            return self._latency, self._hangs.popleft() if self._hangs else 0.0

    def take_trickle(self) -> Trickle | None:
        """How to trickle the next answer, or None to send it at once."""
        with self._lock:
            return self._trickles.popleft() if self._trickles else None

    def take_failure(self) -> tuple[int, str | None] | None:
        """(status, Retry-After text or None) to fail the next request with (``fail_next``, else
        ``error_rate``), or None."""
        with self._lock:
            if self._fail:
                return self._fail.popleft()
            if self._error_rate and self._random.random() < self._error_rate:
                return self._random.choice((500, 502, 503, 504)), None
            return None

    def take_rate_limit(self) -> tuple[str, float, str | None] | None:
        """(header form, seconds, Retry-After text or None) when the next request is to be answered 429."""
        with self._lock:
            return self._rate_limits.popleft() if self._rate_limits else None

    def take_page_fault(self, page: int) -> int | str | None:
        """The fault for query page ``page`` (a status or one of ``PAGE_FAULTS``), or None."""
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
