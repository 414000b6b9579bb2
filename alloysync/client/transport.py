"""The HTTP transport under ``AlloyClient``: httpx's connection pool, with a deadline on each request.

httpx's timeouts bound each network operation, not the request: a server that sends a byte every
two seconds never trips a three-second read timeout, and can hold a request open for as long as it
likes. Here every operation (connect, TLS handshake, each write and each read) waits at most until
the deadline that ``request_deadline`` sets, so one timeout bounds the whole request: connect, send,
headers and body. The one step it cannot bound is the DNS lookup, which Python does not let us time
out; it is the system resolver's own timeout (typically 5 s a try).

It is built from httpcore's public parts (httpcore is httpx's engine: its pool and its network
backend hook), and keeps what httpx's own transport does for us: certificates (``SSL_CERT_FILE``),
and an HTTP proxy from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` unless ``NO_PROXY`` excludes the host.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, cast

import httpcore
import httpx

from alloysync.client.errors import AlloyError

# When the request now running must be over (time.monotonic()), or None for no deadline. A context
# variable, so that two threads sharing one client each keep their own.
_deadline: ContextVar[float | None] = ContextVar("alloy_request_deadline", default=None)

# Idle connections are dropped after this, as httpx's own transport does (httpcore keeps them forever).
_KEEPALIVE_SECONDS = 5.0

# httpcore's errors as httpx's, most specific first: what httpx's own transport raises.
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Within this block, network operations on a ``DeadlineTransport`` end ``seconds`` from now.

    An operation still waiting then fails with httpx's ``ConnectTimeout``, ``WriteTimeout`` or
    ``ReadTimeout``, as if its own timeout had run out.
    """
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


class DeadlineTransport(httpx.BaseTransport):
    """httpx's HTTP/1.1 transport whose every network operation respects ``request_deadline``.

    ``base_url`` picks the proxy from the environment, as httpx would; ``AlloyError`` if that proxy
    is not an http(s) one.
    """

    def __init__(self, base_url: str) -> None:
        ssl_context = httpx.create_ssl_context()
        backend = _DeadlineBackend()
        proxy = _environment_proxy(base_url)
        self._pool: httpcore.ConnectionPool
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=ssl_context, network_backend=backend, keepalive_expiry=_KEEPALIVE_SECONDS
            )
        else:
            self._pool = httpcore.HTTPProxy(
                proxy_url=httpcore.URL(
                    scheme=proxy.url.raw_scheme,
                    host=proxy.url.raw_host,
                    port=proxy.url.port,
                    target=proxy.url.raw_path,
                ),
                proxy_auth=proxy.raw_auth,
                ssl_context=ssl_context,
                network_backend=backend,
                keepalive_expiry=_KEEPALIVE_SECONDS,
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool; the body streams as the caller reads it."""
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(cast(Iterable[bytes], response.stream)),  # the sync pool's stream is iterable
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core_error, httpx_error in _ERRORS:
            if isinstance(exc, core_error):
                # Chained, so the client can tell a DNS failure from a refused connection.
                raise httpx_error(str(exc)) from exc
        raise


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, each operation's timeout cut to what is left before the deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _bounded(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` cut to the time left before the deadline; ``expired`` when none is left."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


def _environment_proxy(base_url: str) -> httpx.Proxy | None:
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    address = proxies.get(url.scheme) or proxies.get("all")
    if not address or urllib.request.proxy_bypass(url.host):
        return None
    proxy = httpx.Proxy(address if "://" in address else f"http://{address}")
    if proxy.url.scheme not in ("http", "https"):
        raise AlloyError(
            f"The proxy for {url.scheme} URLs ({proxy.url.scheme}://{proxy.url.host}) is not an HTTP proxy, "
            "which is all alloysync supports: set an http:// proxy, or add the Alloy host to NO_PROXY."
        )
    return proxy
