"""One HTTP POST with a deadline on the whole exchange: connect, send, status line and headers.

httpx's timeouts bound each network operation, not the request: an endpoint that answers one byte
every few seconds never trips a 5-second read timeout and can hold a worker for as long as it likes.
Here every operation (connect, TLS handshake, each write and each read) waits at most until the
deadline, built on httpcore's public network-backend hook (httpcore is httpx's engine). Only the
status is read: the body is never read, so a big or endless one costs nothing. No redirects.
The DNS lookup is the one step it cannot bound (the system resolver's own timeout). An HTTP proxy
from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` is used unless ``NO_PROXY`` excludes the host, as
httpx itself would.

The Alloy client has the same deadline (``alloysync.client.transport``); the import layers keep the
job engine from importing it, hence this small sibling.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class PostFailed(Exception):
    """The POST did not get a status; the message is the error's type only (httpcore's text quotes the URL)."""


def post_status(url: str, body: bytes, *, deadline_seconds: float, content_type: str = "application/json") -> int:
    """POST ``body`` to ``url`` and return the HTTP status, all within ``deadline_seconds`` (monotonic).

    ``PostFailed`` (``"ConnectError"``, ``"ReadTimeout"``, ...) if it was not reached or did not answer
    in time; ``ValueError`` for a URL it cannot use. Redirects are not followed (a 3xx is returned).
    """
    backend = _DeadlineBackend(time.monotonic() + deadline_seconds)
    headers = [(b"Content-Type", content_type.encode()), (b"Content-Length", str(len(body)).encode())]
    with _pool(url, backend) as pool:
        try:
            with pool.stream("POST", url, headers=headers, content=body) as response:
                return response.status  # the body is left unread: closing drops the connection
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError) as exc:
            raise PostFailed(type(exc).__name__) from None
        except httpcore.UnsupportedProtocol as exc:
            raise ValueError(type(exc).__name__) from None


def _pool(url: str, backend: httpcore.NetworkBackend) -> httpcore.ConnectionPool:
    """A one-request pool, through the environment's HTTP proxy for ``url`` if there is one."""
    ssl_context = httpx.create_ssl_context()
    target = httpx.URL(url)
    proxies = urllib.request.getproxies()
    address = proxies.get(target.scheme) or proxies.get("all")
    if not address or urllib.request.proxy_bypass(target.host):
        return httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend, retries=0)
    proxy = httpx.Proxy(address if "://" in address else f"http://{address}")
    if proxy.url.scheme not in ("http", "https"):
        raise ValueError(f"the proxy for {target.scheme} URLs is not an HTTP proxy ({proxy.url.scheme})")
    return httpcore.HTTPProxy(
        proxy_url=httpcore.URL(
            scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port, target=proxy.url.raw_path
        ),
        proxy_auth=proxy.raw_auth,
        ssl_context=ssl_context,
        network_backend=backend,
        retries=0,
    )


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, each operation's timeout cut to what is left before ``deadline``."""

    def __init__(self, deadline: float) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(self._deadline, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._backend.connect_tcp(host, port, bounded, local_address, socket_options), self._deadline
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for webhooks")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(self._deadline, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(self._deadline, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(self._deadline, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _bounded(deadline: float, expired: type[httpcore.TimeoutException]) -> float:
    """Seconds left before ``deadline``; ``expired`` when none are left."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the deadline has passed")
    return left
