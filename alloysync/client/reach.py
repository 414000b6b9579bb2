"""Where Alloy is, and why it could not be reached: the client's settings checked, connection failures told.

A wrong ``ALLOY_BASE_URL`` shows up as a name that does not resolve, a refused connection, a
connection nobody answers or a failed TLS handshake. ``connect_cause`` says which, in words an
operator can act on; the client decides whether to retry (see ``AlloyClient``'s ``fail_fast``).
"""

from __future__ import annotations

import math
import re
import socket
import ssl

import httpx

from alloysync.client.errors import AlloyError

# What an HTTP header value can carry without being refused or mangled: visible ASCII, no spaces.
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")
_EXAMPLE_URL = "https://api.uk.alloyapp.io"


def checked_settings(api_key: str, *, timeout: float, page_size: int, max_answer_bytes: int) -> None:
    """``AlloyError`` naming the setting when one of these cannot work; the key itself is never quoted."""
    if not isinstance(api_key, str):  # e.g. a settings wrapper passed on instead of the key it holds
        raise AlloyError(f"The Alloy API key must be given as text (str), not {type(api_key).__name__}.")
    if not api_key:
        raise AlloyError("The Alloy API key is empty: set ALLOY_API_KEY.")
    if not _HEADER_TOKEN.fullmatch(api_key):
        raise AlloyError(
            "ALLOY_API_KEY holds a space, a control character or a non-ASCII character, which an HTTP "
            "header cannot carry: check the key (a line break at the end of ALLOY_API_KEY_FILE?)."
        )
    if not (math.isfinite(timeout) and timeout > 0):
        raise AlloyError(f"ALLOY_TIMEOUT must be a positive number of seconds, not {timeout!r}.")
    if page_size < 1:
        raise AlloyError(f"ALLOY_PAGE_SIZE must be at least 1, not {page_size}.")
    if max_answer_bytes < 1:
        raise AlloyError(f"The largest answer to read must be at least 1 byte, not {max_answer_bytes}.")


def checked_base_url(base_url: str) -> httpx.URL:
    """``base_url`` parsed; ``AlloyError`` naming ALLOY_BASE_URL unless it is an http(s) URL with a host."""
    shown = repr(base_url[:100]) if "@" not in base_url else "a URL with credentials (not shown)"
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise AlloyError(f"ALLOY_BASE_URL is not a valid URL ({exc}); it should look like {_EXAMPLE_URL}.") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise AlloyError(f"ALLOY_BASE_URL must be an http(s) URL such as {_EXAMPLE_URL}, not {shown}.")
    if url.port is not None and not 0 < url.port < 65536:
        # httpx accepts any number here, and the resolver quietly wraps it to another port.
        raise AlloyError(f"ALLOY_BASE_URL has port {url.port}, but ports run from 1 to 65535.")
    return url


def connect_cause(error: httpx.TransportError, host: str, timeout: float) -> str:
    """Why a connection to ``host`` failed, in words: the name, the port, no answer, or TLS."""
    if isinstance(error, httpx.ConnectTimeout):
        return f"no answer to the connection within {timeout:g} s"
    cause = _os_error(error)
    if isinstance(cause, socket.gaierror):
        return f"the name {host!r} does not resolve ({cause.strerror or cause})"
    if isinstance(cause, ConnectionRefusedError):
        return "the connection was refused: nothing listens on that port"
    if isinstance(cause, ssl.SSLError):
        return f"the TLS handshake failed ({cause})"
    if isinstance(cause, TimeoutError):
        return f"no answer to the connection within {timeout:g} s"
    return f"{type(error).__name__}: {error or 'no detail'}"


def _os_error(error: BaseException) -> OSError | None:
    """The operating system's error under httpx's and httpcore's wrappers, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
