"""Page bodies built to exhaust or crash a client that trusts what it reads (``Faults.fail_page``).

Each is a ``(body bytes, extra headers)`` pair. The big ones are made once and kept: the gzip bomb
costs a second or so of compression, and every test that asks for it gets the same bytes.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import zlib
from typing import Any

# What the gzip bomb inflates to, and how big the plain oversize page is.
BOMB_INFLATED_BYTES = 300 * 1024 * 1024
OVERSIZE_BYTES = 40 * 1024 * 1024
DEEP_LEVELS = 100_000
HUGE_NUMBER_DIGITS = 5_000

_PAGE_START = b'{"page": 1, "pageSize": 100, "results": ['
_PAGE_END = b"]}"


def hostile_page(fault: str, page: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and extra headers for page fault ``fault`` (``deep``, ``huge-number``, ``nan``,
    ``gzip-bomb`` or ``oversize``); ``page`` is the answer the page should have had (``nan`` spoils
    its first item). KeyError for any other fault."""
    if fault == "nan":
        return _nan(page or {"results": []}), {}
    builders = {
        "deep": _deep,
        "huge-number": _huge_number,
        "gzip-bomb": _gzip_bomb,
        "oversize": _oversize,
    }
    return builders[fault]()


def _deep() -> tuple[bytes, dict[str, str]]:
    return _PAGE_START + b"[" * DEEP_LEVELS + b"]" * DEEP_LEVELS + _PAGE_END, {}


def _huge_number() -> tuple[bytes, dict[str, str]]:
    return b'{"page": 1, "pageSize": 100, "total": ' + b"9" * HUGE_NUMBER_DIGITS + b', "results": []}', {}


def _nan(page: dict[str, Any]) -> bytes:
    # Every attribute of the first item becomes NaN, Infinity or -Infinity, which Python writes and
    # reads although JSON has no such numbers; the page's other items stay as they were.
    spoiled = copy.deepcopy(page)
    results = spoiled.get("results") or []
    if results:
        values = itertools.cycle([float("nan"), float("inf"), float("-inf")])
        for attribute in results[0].get("attributes", []):
            attribute["value"] = next(values)
    return json.dumps(spoiled).encode()


def _gzip_bomb() -> tuple[bytes, dict[str, str]]:
    return _compressed_padding(BOMB_INFLATED_BYTES), {"Content-Encoding": "gzip"}


def _oversize() -> tuple[bytes, dict[str, str]]:
    return _PAGE_START + b" " * OVERSIZE_BYTES + _PAGE_END, {}


@functools.cache
def _compressed_padding(size: int) -> bytes:
    """An empty page padded with ``size`` spaces, gzip-compressed a MiB at a time (never whole in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [compressor.compress(_PAGE_START)]
    chunk = b" " * (1024 * 1024)
    for _ in range(size // len(chunk)):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.compress(b" " * (size % len(chunk)) + _PAGE_END))
    parts.append(compressor.flush())
    return b"".join(parts)
