"""Pacing: slowing down before Alloy answers 429, from what its answers say is left of each minute.

Alloy limits each endpoint (method and path, with the item id left out: ``"GET /api/item/{id}"``) to
about 100 requests a minute, and every answer says how many are left (``X-Rate-Limit-Remaining``) and
when the count starts again (``X-Rate-Limit-Reset``, an ISO timestamp). A ``Pacer`` turns that into a
wait before each request: ``before(endpoint)`` returns the seconds to wait (the client sleeps them),
``after(endpoint, remaining, reset_at)`` takes what an answer said.

The policy (``PacingPolicy``): keep a reserve (5% of the limit, at least 2) for the deployment's other
processes and the customer's own use; at or below it, wait until the reset. Below half the limit,
spread what is left above the reserve evenly over the time to the reset, so a long read does not burn
the minute in two seconds and then stall. Above half, no wait: short bursts cost nothing. Each request
sent counts as one less remaining until the next answer says otherwise; no wait is longer than
``MAX_PACING_WAIT_SECONDS``, and a reset in the past means a whole budget again.

``LocalPacer`` paces the threads of one process; ``alloysync.pacing.DatabasePacer`` (Django side)
shares one budget between every process of a deployment. A 429 is still retried by ``policy.py``.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

from alloysync.client.policy import parse_alloy_timestamp

# No single pacing wait longer than this: a reset is at most a minute away.
MAX_PACING_WAIT_SECONDS = 65.0
# A reset further ahead than this is not a minute's window (a broken header, or clocks far apart): ignored.
MAX_RESET_AHEAD_SECONDS = 120.0
# Alloy's historical limit: assumed for an endpoint until an answer shows a larger one.
DEFAULT_LIMIT = 100
# Two answers whose resets are this close describe the same window (the reset carries 7 fractional
# digits, so it may move a little from one answer to the next).
SAME_WINDOW_SECONDS = 1.0

# Paths that name one thing: the thing is not part of the endpoint Alloy counts against.
_TEMPLATES = (
    (re.compile(r"^/api/item/[^/]+$"), "/api/item/{id}"),
    (re.compile(r"^/api/item-log/design/[^/]+$"), "/api/item-log/design/{code}"),
)
# X-Rate-Limit-Remaining: a small non-negative whole number, nothing else.
_REMAINING_RE = re.compile(r"^\s*(\d{1,9})\s*$")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Pacer(Protocol):
    """Paces requests by Alloy's rate-limit headers. Implementations are thread-safe and never raise."""

    def before(self, endpoint: str) -> float:
        """Seconds to wait before sending a request to ``endpoint``; counts the request as sent."""
        ...

    def after(self, endpoint: str, remaining: int | None, reset_at: datetime | None) -> None:
        """What an answer from ``endpoint`` said: requests left and when the count starts again."""
        ...


def endpoint_key(method: str, path: str) -> str:
    """The endpoint a request counts against: ``"GET /api/item/{id}"``, ``"POST /api/aqs/query"``."""
    path = path.split("?", 1)[0]
    for pattern, template in _TEMPLATES:
        if pattern.match(path):
            path = template
            break
    return f"{method.upper()} {path}"


def read_rate_limit(headers: httpx.Headers, now: datetime | None = None) -> tuple[int | None, datetime | None]:
    """``X-Rate-Limit-Remaining`` and ``-Reset`` from an answer, each None when absent or not believable.

    Never raises: a header that is not a small whole number, or not a timestamp at most
    ``MAX_RESET_AHEAD_SECONDS`` ahead, is no information.
    """
    now = now or utc_now()
    match = _REMAINING_RE.match(headers.get("x-rate-limit-remaining") or "")
    remaining = int(match.group(1)) if match else None
    text = headers.get("x-rate-limit-reset") or ""
    reset_at = parse_alloy_timestamp(text) if len(text) <= 64 else None
    if reset_at is not None and (reset_at - now).total_seconds() > MAX_RESET_AHEAD_SECONDS:
        reset_at = None
    return remaining, reset_at


@dataclass(frozen=True)
class PacingPolicy:
    """How long to wait, given what is left of an endpoint's window: see the module's docstring."""

    reserve_fraction: float = 0.05
    min_reserve: int = 2
    spread_below_fraction: float = 0.5
    reset_margin_seconds: float = 0.5
    max_wait_seconds: float = MAX_PACING_WAIT_SECONDS

    def reserve(self, limit: int) -> int:
        """Requests of each window left to others: the deployment's other processes, the customer."""
        return max(self.min_reserve, math.ceil(limit * self.reserve_fraction))

    def wait(self, remaining: int, reset_at: datetime, now: datetime, limit: int = DEFAULT_LIMIT) -> float:
        """Seconds to wait before one more request, with ``remaining`` left until ``reset_at``."""
        left = (reset_at - now).total_seconds()
        if not left > 0:  # the window is over: the budget is whole again
            return 0.0
        usable = remaining - self.reserve(limit)
        if usable <= 0:
            # The margin: Alloy's clock and ours may disagree a little, and a request just before
            # Alloy's reset would be refused.
            return min(left + self.reset_margin_seconds, self.max_wait_seconds)
        if remaining >= limit * self.spread_below_fraction:
            return 0.0
        return min(left / usable, self.max_wait_seconds)


def merged_budget(
    stored: tuple[int, datetime] | None, remaining: int, reset_at: datetime, now: datetime
) -> tuple[int, datetime] | None:
    """An endpoint's budget after an answer said ``remaining`` until ``reset_at``; None: keep ``stored``.

    Within one window Alloy's count only goes down, and requests still in flight are not in it yet:
    keep the lower of the two. A later window replaces the stored one; an answer from an earlier
    window (one that was slow to arrive) is stale.
    """
    if stored is None or stored[1] <= now:
        return remaining, reset_at
    stored_remaining, stored_reset = stored
    if abs((reset_at - stored_reset).total_seconds()) <= SAME_WINDOW_SECONDS:
        return min(stored_remaining, remaining), stored_reset
    if reset_at > stored_reset:
        return remaining, reset_at
    return None


class LocalPacer:
    """Paces the threads of one process by ``policy``; the client's default. Thread-safe.

    ``clock`` returns an aware datetime (tests move it). Each endpoint's limit is taken as the largest
    ``remaining + 1`` seen in its latest window, ``DEFAULT_LIMIT`` at least: learnt afresh each
    window, so one answer that lies (``X-Rate-Limit-Remaining: 999999999``) cannot make every later
    honest window look nearly spent.
    """

    def __init__(self, policy: PacingPolicy | None = None, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.policy = policy or PacingPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._budgets: dict[str, tuple[int, datetime]] = {}
        self._limits: dict[str, tuple[datetime, int]] = {}  # endpoint -> (its window's reset, limit)

    def __repr__(self) -> str:
        return f"LocalPacer({len(self._budgets)} endpoints)"

    def before(self, endpoint: str) -> float:
        now = self._clock()
        with self._lock:
            budget = self._budgets.get(endpoint)
            if budget is None or budget[1] <= now:
                return 0.0  # nothing known, or a new window: nothing to hold back for
            remaining, reset_at = budget
            self._budgets[endpoint] = (remaining - 1, reset_at)
            return self.policy.wait(remaining, reset_at, now, self.limit(endpoint))

    def after(self, endpoint: str, remaining: int | None, reset_at: datetime | None) -> None:
        if remaining is None or reset_at is None:
            return  # half a report: not enough to pace by
        now = self._clock()
        with self._lock:
            self._limits[endpoint] = _window_limit(self._limits.get(endpoint), remaining, reset_at)
            merged = merged_budget(self._budgets.get(endpoint), remaining, reset_at, now)
            if merged is not None:
                self._budgets[endpoint] = merged

    def limit(self, endpoint: str) -> int:
        """The endpoint's limit a window, as far as the answers of its latest window show it."""
        known = self._limits.get(endpoint)
        return DEFAULT_LIMIT if known is None else known[1]

    def remaining(self, endpoint: str) -> int | None:
        """Requests this pacer believes are left in the endpoint's window; None when none is known."""
        with self._lock:
            budget = self._budgets.get(endpoint)
        return None if budget is None else budget[0]


def _window_limit(known: tuple[datetime, int] | None, remaining: int, reset_at: datetime) -> tuple[datetime, int]:
    """The limit after an answer of the window ending at ``reset_at`` said ``remaining``."""
    seen = max(DEFAULT_LIMIT, remaining + 1)
    if known is None or reset_at - known[0] > timedelta(seconds=SAME_WINDOW_SECONDS):
        return reset_at, seen  # a later window: learnt afresh
    if known[0] - reset_at > timedelta(seconds=SAME_WINDOW_SECONDS):
        return known  # a slow answer from an earlier window teaches nothing now
    return known[0], max(known[1], seen)


def clamp_wait(seconds: float) -> float:
    """A pacer's answer as a wait the client can sleep: finite, 0 to ``MAX_PACING_WAIT_SECONDS``."""
    if not math.isfinite(seconds) or seconds <= 0:
        return 0.0
    return min(seconds, MAX_PACING_WAIT_SECONDS)


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_PACING_WAIT_SECONDS",
    "LocalPacer",
    "Pacer",
    "PacingPolicy",
    "clamp_wait",
    "endpoint_key",
    "merged_budget",
    "read_rate_limit",
]
