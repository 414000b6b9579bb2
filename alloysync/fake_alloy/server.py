"""``FakeAlloyServer``: the fake Alloy's items served on a loopback port from a background thread.

It adds to the item store what a running server needs: the key it accepts, the faults to inject,
the log of requests received and Alloy's per-minute rate-limit count. The HTTP side is ``handler.py``.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from alloysync.fake_alloy.aqs import ApiError
from alloysync.fake_alloy.faults import Faults
from alloysync.fake_alloy.handler import AlloyHTTPServer
from alloysync.fake_alloy.store import ItemStore

# Alloy's documented limit; the fake counts against it for the X-Rate-Limit-* headers only.
RATE_LIMIT_PER_MINUTE = 100


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
        self._requests: list[RequestRecord] = []
        self._minute = 0
        self._minute_count = 0
        self._stopping = threading.Event()
        # Called with the page number after each query page is computed, before it is sent: lets a
        # test edit items between pages, as Alloy users do while a sync reads.
        self.after_page: Callable[[int], None] | None = None
        self._httpd: AlloyHTTPServer | None = None
        self._thread: threading.Thread | None = None
        super().__init__(items, designs=designs)

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
