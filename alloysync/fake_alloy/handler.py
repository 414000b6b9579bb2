"""The fake Alloy's HTTP side: routes requests to a ``FakeAlloyServer``, answers in Alloy's shapes.

Every answer is JSON with Alloy's rate-limit headers for its endpoint; errors use Alloy's error body.
A request beyond an enforced rate limit is answered 429 before anything else (no fault is taken, no
change made). Injected faults are taken here, per request, in the order ``Faults`` documents.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import socket
import socketserver
import sys
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from alloysync.fake_alloy.aqs import ApiError
from alloysync.fake_alloy.faults import Trickle
from alloysync.fake_alloy.hostile import hostile_page
from alloysync.fake_alloy.ratelimit import RateState
from alloysync.fake_alloy.timestamps import format_alloy_timestamp, parse_alloy_datetime

if TYPE_CHECKING:
    from alloysync.fake_alloy.server import FakeAlloyServer

# The package's name, as before it was split: log filters may select on it.
logger = logging.getLogger("alloysync.fake_alloy")

_ITEM_PATH = re.compile(r"^/api/item/([^/]+)$")
_ITEM_LOG_PATH = re.compile(r"^/api/item-log/design/([^/]+)$")

# Imported from here before timestamps.py existed.
__all__ = ["AlloyHTTPServer", "format_alloy_timestamp"]


class AlloyHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server on ``address`` whose handlers answer for ``alloy``."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait for requests held by a hang fault

    def __init__(self, address: tuple[str, int], alloy: FakeAlloyServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.alloy = alloy
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are the point of some faults: not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        logger.exception("The fake Alloy failed to answer %s.", client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection: each request is logged, delayed or failed as the faults say, then routed."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its load balancer
    server_version = "FakeAlloy/1.0"
    timeout = 30  # idle keep-alive connections are closed after this
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: AlloyHTTPServer
    _trickle: Trickle | None = None
    _rate: RateState | None = None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only: headers (and so the key) are never logged.
        logger.debug("fake Alloy: " + format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, unknown method) in Alloy's error shape too.
        self.close_connection = True
        self._send_error(ApiError(code, "BadRequest" if code < 500 else "ServerError", message or "Bad request."))

    def _handle(self, method: str) -> None:
        alloy = self.server.alloy
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        raw_body = self._read_body()
        page = _first_int(params.get("page"))
        self._rate = alloy.record(method, url.path, page)
        if self._rate.limited:
            # Refused before any fault or change: a request beyond the limit has no effect.
            self._send_error(ApiError(429, "RateLimited", "Too many requests to this endpoint this minute."))
            return
        self._trickle = alloy.faults.take_trickle()
        latency, hang = alloy.faults.take_delay()
        alloy.pause(latency + hang)
        if alloy.stopping:
            self.close_connection = True
            return
        try:
            # A held request has had its fault: it must not also eat the next request's.
            if not hang and self._injected_fault(alloy):
                return
            alloy.check_auth(self.headers.get("Authorization"))
            body = self._route(alloy, method, url.path, params, raw_body)
        except ApiError as error:
            self._send_error(error)
            return
        if body is not None:
            self._send_json(200, body)

    def _injected_fault(self, alloy: FakeAlloyServer) -> bool:
        failure = alloy.faults.take_failure()
        if failure is not None:
            status, retry_after = failure
            self._send_error(ApiError(status, "ServerError", "Injected failure."), {"Retry-After": retry_after})
            return True
        rate_limit = alloy.faults.take_rate_limit()
        if rate_limit is None:
            return False
        header, seconds, retry_after = rate_limit
        error = ApiError(429, "RateLimited", "Too many requests; try again later.")
        if header == "retry-after":
            self._send_error(error, {"Retry-After": retry_after or str(max(0, round(seconds)))})
        elif header == "reset":
            reset = datetime.now(UTC) + timedelta(seconds=seconds)
            self._send_error(
                error, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": format_alloy_timestamp(reset)}
            )
        else:
            self._send_error(
                error, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": None, "Retry-After": retry_after}
            )
        return True

    def _route(
        self, alloy: FakeAlloyServer, method: str, path: str, params: dict[str, list[str]], raw: bytes
    ) -> dict[str, Any] | None:
        if (method, path) == ("GET", "/api/session/me"):
            return alloy.session_me()
        if (method, path) == ("POST", "/api/aqs/query"):
            page, page_size = _paging(params)
            fault = alloy.faults.take_page_fault(page)
            if fault is not None:
                self._send_page_fault(fault, alloy.query(_json_body(raw), page, page_size))
                return None
            body = alloy.query(_json_body(raw), page, page_size)
            alloy.page_served(page)
            return body
        if (method, path) == ("POST", "/api/aqs/statistics"):
            return alloy.statistics(_json_body(raw))
        match = _ITEM_PATH.match(path)
        if match and method == "GET":
            return alloy.get_item_body(unquote(match.group(1)))
        if match and method == "PUT":
            return alloy.put_item_body(unquote(match.group(1)), _json_body(raw, "ModelValidationFailed"))
        if match and method == "DELETE":
            return alloy.delete_item_body(unquote(match.group(1)))
        match = _ITEM_LOG_PATH.match(path)
        if match and method == "GET" and alloy.item_log:
            since, page, page_size = _item_log_params(params)
            return alloy.item_log_body(unquote(match.group(1)), since, page, page_size)
        raise ApiError(404, "ResourceNotFound", f"No such endpoint: {method} {path}.")

    def _send_page_fault(self, fault: int | str, good_body: dict[str, Any]) -> None:
        if isinstance(fault, int):
            self._send_error(ApiError(fault, "ServerError", "Injected page failure."))
        elif fault == "malformed":
            self._send_raw(200, b'{"page": 1, "pageSize": 100, "results": [{"itemId": ')
        elif fault == "broken":  # promise the whole page, send half of it, hang up
            data = json.dumps(good_body).encode()
            self._send_raw(200, data[: len(data) // 2], content_length=len(data))
            self.close_connection = True
        else:
            data, headers = hostile_page(fault, good_body)
            self._send_raw(200, data, headers=headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_error(self, error: ApiError, headers: Mapping[str, str | None] | None = None) -> None:
        body = {
            "category": error.category,
            "errorCode": str(zlib.crc32(error.category.encode())),
            "errorData": None,
            "httpStatusCode": error.status,
            "message": error.message,
        }
        self._send_json(error.status, body, headers)

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str | None] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode(), headers=headers)

    def _send_raw(
        self,
        status: int,
        data: bytes,
        *,
        content_length: int | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> None:
        remaining, reset, _ = self._rate or self.server.alloy.record_nothing()
        if content_length is None and self._gzip_wanted(headers):
            data, headers = gzip.compress(data), {**(headers or {}), "Content-Encoding": "gzip"}
        merged: dict[str, str | None] = {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(data) if content_length is None else content_length),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": format_alloy_timestamp(reset),
            **(headers or {}),
        }
        try:
            self.send_response(status)
            for name, value in merged.items():
                if value is not None:  # None: a header this answer leaves out on purpose
                    self.send_header(name, value)
            self.end_headers()
            self._write(data, trickle=self._trickle is not None)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting; nobody to answer

    def _gzip_wanted(self, headers: Mapping[str, str | None] | None) -> bool:
        accepted = "gzip" in (self.headers.get("Accept-Encoding") or "")
        return self.server.alloy.faults.gzip and accepted and not (headers or {}).get("Content-Encoding")

    def flush_headers(self) -> None:
        # http.server collects the status line and headers, then writes them here in one go.
        if self._trickle is not None and self._trickle.headers:
            buffered: list[bytes] = getattr(self, "_headers_buffer", [])
            self._headers_buffer: list[bytes] = []
            self._write(b"".join(buffered), trickle=True)
        else:
            super().flush_headers()

    def _write(self, data: bytes, *, trickle: bool) -> None:
        if not trickle or self._trickle is None:
            self.wfile.write(data)
            return
        # A byte at a time: each read the client makes succeeds quickly, the answer takes ages.
        for index in range(len(data)):
            if self.server.alloy.stopping:
                self.close_connection = True
                return
            self.wfile.write(data[index : index + 1])
            self.server.alloy.pause(self._trickle.interval)


def _first_int(values: Sequence[str] | None) -> int | None:
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def _paging(params: dict[str, list[str]]) -> tuple[int, int]:
    page, page_size = _first_int(params.get("page")) or 1, _first_int(params.get("pageSize")) or 100
    if page < 1 or page_size < 1:
        raise ApiError(400, "ModelValidationFailed", "page and pageSize must be positive integers.")
    return page, page_size


def _item_log_params(params: dict[str, list[str]]) -> tuple[datetime | None, int, int]:
    """``Since``, ``Page`` and ``PageSize`` from the query, names matched case-insensitively as ASP.NET does."""
    named = {name.lower(): values for name, values in params.items()}
    page, page_size = _paging({"page": named.get("page", []), "pageSize": named.get("pagesize", [])})
    since_text = (named.get("since") or [""])[0]
    try:
        since = parse_alloy_datetime(since_text) if since_text else None
    except ValueError:
        raise ApiError(400, "ModelValidationFailed", f"Since must be an ISO-8601 time, not {since_text!r}.") from None
    return since, page, page_size


def _json_body(raw: bytes, category: str = "AqsInvalidQuery") -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, category, "The request body is not valid JSON.") from None
