"""``FakeAlloyServer``: the fake Alloy's items served on a loopback port from a background thread.

It adds to the item store what a running server needs: the key it accepts, the faults to inject,
the log of requests received, Alloy's rate limit per endpoint per minute (counted for the headers,
enforced when asked), the optional item log endpoint and a simulated workflow. The HTTP side is
``handler.py``.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from alloysync.fake_alloy.aqs import ApiError
from alloysync.fake_alloy.faults import Faults
from alloysync.fake_alloy.handler import AlloyHTTPServer
from alloysync.fake_alloy.ratelimit import RATE_LIMIT_PER_MINUTE, RateLimiter, RateState, endpoint_key
from alloysync.fake_alloy.store import Clock, ItemEvent, ItemStore, utc_now
from alloysync.fake_alloy.workflow import Workflow, WorkflowCall, WorkflowRunner

__all__ = ["RATE_LIMIT_PER_MINUTE", "FakeAlloyServer", "RequestRecord"]


class RequestRecord(NamedTuple):
    """One request as the server received it; ``page`` is the query page, else None."""

    method: str
    path: str
    page: int | None


class FakeAlloyServer(ItemStore):
    """An in-memory Alloy on a loopback port, served from a background thread.

    ``FakeAlloyServer(items, api_key=...)``; use as a context manager or call ``start()``/``stop()``.
    ``url`` is the base URL to give the client. ``designs`` adds design codes that exist without
    items (the sample design always exists); a query on any other design is refused, as Alloy would.

    ``rate_limit``: requests allowed per endpoint per ``rate_window`` seconds (a clock minute) before
    answering 429 and doing nothing; None counts for the headers only. ``item_log``: serve
    ``GET /api/item-log/design/{code}`` (else 404, as for a tenant without it). ``workflow``: a
    ``Workflow`` to run on item changes (also settable as ``server.workflow``). ``clock``: edit times.
    """

    def __init__(
        self,
        items: Iterable[Mapping[str, Any]] | None = None,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        designs: Iterable[str] = (),
        rate_limit: int | None = None,
        rate_window: float = 60.0,
        item_log: bool = False,
        workflow: Workflow | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if not api_key:
            raise ValueError("The fake Alloy needs an API key to check.")
        self.host = _loopback_host(host)
        self.port = port
        self.faults = Faults()
        self.item_log = item_log
        # The items given were there before the workflow was made: storing them calls no webhook.
        self.workflow: Workflow | None = None
        self._workflows = WorkflowRunner()
        self._api_key = api_key
        self._requests: list[RequestRecord] = []
        self._rate = RateLimiter(rate_limit, window=rate_window)
        self._stopping = threading.Event()
        # Called with the page number after each query page is computed, before it is sent: lets a
        # test edit items between pages, as Alloy users do while a sync reads.
        self.after_page: Callable[[int], None] | None = None
        self._httpd: AlloyHTTPServer | None = None
        self._thread: threading.Thread | None = None
        super().__init__(items, designs=designs, clock=clock)
        self.workflow = workflow

    def __repr__(self) -> str:
        state = self.url if self._httpd else "stopped"
        return f"FakeAlloyServer({state}, {len(self._items)} items)"

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeAlloyServer:
        """Listen and serve from a daemon thread; a no-op when already started."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = AlloyHTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-alloy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and hang up on requests still held by faults; a no-op when stopped."""
        if self._httpd is None:
            return
        self._stopping.set()  # releases requests held by latency or hang faults
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None
        self._workflows.stop()

    def __enter__(self) -> FakeAlloyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``; RuntimeError when the server is not running."""
        if self._httpd is None:
            raise RuntimeError("The fake Alloy is not running: call start() first.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` has begun: held requests are then hung up on, not answered."""
        return self._stopping.is_set()

    def pause(self, seconds: float) -> None:
        """Hold a request for ``seconds``, or until the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    # --- requests -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received, faulty ones included: (method, path, page or None)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def record(self, method: str, path: str, page: int | None) -> RateState:
        """Log a request and count it against its endpoint's rate limit; the endpoint's state after it."""
        with self._lock:
            self._requests.append(RequestRecord(method, path, page))
        return self._rate.count(endpoint_key(method, path))

    def record_nothing(self) -> RateState:
        """The rate-limit state for an answer to a request too broken to log (no endpoint known)."""
        return self._rate.peek()

    @property
    def rate_limit(self) -> int | None:
        """Requests allowed per endpoint per window before 429; None: not enforced."""
        return self._rate.limit

    @rate_limit.setter
    def rate_limit(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("rate_limit cannot be negative.")
        self._rate.limit = limit

    @property
    def rate_limited(self) -> dict[str, int]:
        """How many requests were answered 429 for going beyond ``rate_limit``, per endpoint key.

        Only the enforced limit counts here, not 429s injected with ``faults.rate_limit_next``.
        """
        return self._rate.refused

    # --- workflow -------------------------------------------------------------------------------

    @property
    def workflow_calls(self) -> list[WorkflowCall]:
        """Every call the workflow made, in order: (event, item id, HTTP status or error text)."""
        return self._workflows.calls

    def wait_for_workflow(self, timeout: float = 5.0) -> bool:
        """Wait until the workflow calls queued so far have been made; False after ``timeout`` seconds."""
        return self._workflows.wait(timeout)

    def _changed(self, event: ItemEvent, attributes: frozenset[str]) -> None:
        super()._changed(event, attributes)
        workflow = self.workflow
        if workflow is not None and workflow.fires_on(event, attributes):
            self._workflows.submit(workflow, event)  # queued: the edit's answer never waits for it

    # --- endpoints beyond the items (called from handler threads) -------------------------------

    def check_auth(self, header: str | None) -> None:
        """``ApiError`` 401 unless ``header`` is ``Bearer <the key>`` (compared in constant time)."""
        expected = f"Bearer {self._api_key}"
        if header is None or not hmac.compare_digest(header.encode(), expected.encode()):
            raise ApiError(401, "UserUnauthorized", "The API key is missing, invalid, disabled or expired.")

    def session_me(self) -> dict[str, Any]:
        """The answer to ``GET /api/session/me``: a fixed user session."""
        return {
            "userSession": {
                "username": "fake.alloy.user",
                "customerCode": "customers_fakeAlloy_65f0c0ffee0000000000a000",
                "customerName": "Fake Alloy",
            }
        }

    def page_served(self, page: int) -> None:
        """Called by the handler after computing query page ``page``: runs ``after_page`` if set."""
        if self.after_page is not None:
            self.after_page(page)


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
