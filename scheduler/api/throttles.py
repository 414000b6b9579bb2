"""Requests a minute: API_RATE_LIMIT per token, counted on the token's row (every process and host
shares it; ``scheduler.api_tokens``); per user and per process for the admin's session."""

from __future__ import annotations

import math
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from scheduler.api_tokens import TokenUse, rate_limit


class ApiRateThrottle(UserRateThrottle):
    """Over API_RATE_LIMIT in the token's current minute: 429 with Retry-After (whole seconds).

    A session (the browsable API) is counted by DRF's own throttle in this process's cache: a person
    clicking through pages, not a system, so a per-process limit is enough.
    """

    scope = "api"

    def __init__(self) -> None:
        self._wait: float | None = None
        # Read per request: tests and deployments change API_RATE_LIMIT without a restart of this class.
        self.rate = f"{rate_limit()}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_rate(self) -> str:
        return f"{rate_limit()}/min"

    def allow_request(self, request: Request, view: Any) -> bool:
        use = request.auth
        if isinstance(use, TokenUse):
            # Counted already, by the UPDATE that authenticated the request.
            if use.window_requests <= rate_limit():
                return True
            self._wait = math.ceil(use.retry_after()) or 1
            return False
        return super().allow_request(request, view)

    def wait(self) -> float | None:
        if self._wait is not None:
            return self._wait
        return super().wait()
