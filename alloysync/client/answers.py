"""Alloy's answers, read within bounds: the body's size once decompressed, then its JSON.

Nothing Alloy sends can exhaust the sync: a body is read a slice at a time and decompressed with a
cap on each step, so a small gzip bomb never inflates in memory beyond the limit; JSON is parsed only
after a cheap check of its nesting depth, and a number longer than Python reads (4,300 digits) is
refused before Python's own ValueError. Each breach is an ``AlloyResponseError`` naming the call and
the limit, never a traceback.

What is safe to parse but not a sane value (``NaN``, ``Infinity``, ``1e400``, an integer of a few
hundred digits) is read as Python reads it and judged where the value is used, item by item: one
item's bad value makes that item invalid (``scheduler.stored_values``), not the whole read.
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from alloysync.client.errors import AlloyResponseError, Redact

# Most bytes of one answer once decompressed: a page of 100 items is ~100 KB, so this leaves room for
# items with large attributes while bounding what a broken or hostile server can make us hold.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# Error answers are only quoted in messages: their first bytes are plenty.
MAX_ERROR_BYTES = 64 * 1024
# Deepest nesting of arrays and objects accepted; Alloy's items (geometry included) nest about 8 deep.
MAX_JSON_DEPTH = 200
# Longest number literal accepted: Python's default limit for integers (converting longer ones takes
# time that grows with the square of their length, so Python refuses them with a ValueError). Fixed
# here, whatever PYTHONINTMAXSTRDIGITS says.
MAX_NUMBER_CHARS = sys.int_info.default_max_str_digits
# Most characters of Alloy's own error message quoted in ours.
_QUOTED_CHARS = 500
# Bytes of a body decoded to quote its start: enough for 80 characters after redaction.
_SNIPPET_SOURCE_BYTES = 4096
# Compressed bytes read from the socket at a time, and the most one decompression step may output:
# memory while reading stays within the limit plus a step, however well the body compresses.
_RAW_CHUNK = 16 * 1024
_INFLATE_STEP = 1024 * 1024

# JSON strings (whose brackets do not count), then anything that is not a bracket.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


class _Decoder(Protocol):
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...

    def flush(self) -> bytes: ...

    @property
    def unconsumed_tail(self) -> bytes: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def eof(self) -> bool: ...


@dataclass(frozen=True)
class Answer:
    """One HTTP answer from Alloy with its whole body, decompressed, at most the reader's limit."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def read_answer(response: httpx.Response, call: str, limit: int) -> Answer:
    """The streamed ``response`` read whole; ``AlloyResponseError`` if it exceeds ``limit`` bytes.

    ``call`` (``POST /api/aqs/query``) names the request in messages. Answers that are not a success
    are cut at ``MAX_ERROR_BYTES`` instead of refused: only their first bytes are ever quoted.
    httpx's transport errors (a connection that breaks mid-body, a timeout) propagate unchanged.
    """
    success = response.is_success
    cap = limit if success else min(limit, MAX_ERROR_BYTES)
    body = bytearray()
    for piece in _decoded(response, call):
        body += piece
        if len(body) > cap:
            if not success:
                del body[cap:]
                break
            raise AlloyResponseError(
                f"Alloy's answer to {call} is larger than {_size(limit)} once decompressed; alloysync reads at "
                "most that much of one answer. If pages are really that large, lower ALLOY_PAGE_SIZE."
            )
    return Answer(response.status_code, response.headers, bytes(body))


def parse_json(content: bytes, call: str, redact: Redact) -> Any:
    """The JSON value in ``content``, refusing what could exhaust or crash the parser.

    ``AlloyResponseError`` naming ``call`` when the body is not UTF-8 JSON (quoting its first bytes,
    through ``redact``), is nested deeper than ``MAX_JSON_DEPTH``, or holds a number longer than
    ``MAX_NUMBER_CHARS``. ``NaN`` and ``Infinity`` are read as Python reads them (floats).
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AlloyResponseError(f"Alloy's answer to {call} is not UTF-8 text, so not JSON.") from None
    if _deeper_than(text, MAX_JSON_DEPTH):
        raise AlloyResponseError(f"Alloy's answer to {call} is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float)
    except json.JSONDecodeError:
        raise AlloyResponseError(f"Alloy's answer to {call} is not JSON ({_quoted(text, redact)}).") from None
    except _NumberError as exc:
        raise AlloyResponseError(f"Alloy's answer to {call} holds {exc}.") from None
    except RecursionError:  # the depth check should make this unreachable; never a traceback if not
        raise AlloyResponseError(f"Alloy's answer to {call} is nested too deeply to read.") from None


def error_details(answer: Answer, call: str, redact: Redact) -> tuple[str | None, str | None]:
    """Alloy's error ``category`` and ``message`` when the body is its error JSON; else (None, a snippet).

    ``redact`` removes the key from any server text returned.
    """
    try:
        body = parse_json(answer.content, call, redact)
    except AlloyResponseError:
        return None, snippet(answer, redact)
    if not isinstance(body, dict):
        return None, None
    category, message = body.get("category"), body.get("message")
    return (
        category if isinstance(category, str) and category else None,
        redact(message)[:_QUOTED_CHARS] if isinstance(message, str) and message else None,
    )


def snippet(answer: Answer, redact: Redact) -> str:
    """The body's first characters, quoted, for messages about answers that are not JSON."""
    return _quoted(answer.content[:_SNIPPET_SOURCE_BYTES].decode("utf-8", "replace"), redact)


def _quoted(text: str, redact: Redact, limit: int = 80) -> str:
    # Redacted before it is cut, so a key that straddles the cut cannot leave its first half behind.
    shown = redact(text[: limit * 50])[:limit].strip()
    return repr(shown) if shown else "empty body"


def _decoded(response: httpx.Response, call: str) -> Iterator[bytes]:
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport): read and decoded already
        yield response.content
        return
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        yield from response.iter_raw(_RAW_CHUNK)
        return
    decoder, received = _decoder(encoding, call), False
    try:
        for raw in response.iter_raw(_RAW_CHUNK):
            received = True
            while raw:
                yield from _inflate(decoder, raw)
                raw = b""
                if decoder.eof and decoder.unused_data:  # gzip allows several members, one after another
                    yield decoder.flush()
                    raw, decoder = decoder.unused_data, _decoder(encoding, call)
        yield decoder.flush()  # what zlib still holds: at most its 32 KiB window
    except zlib.error as exc:
        raise AlloyResponseError(f"Alloy's answer to {call} is not valid {encoding} data ({exc}).") from None
    if received and not decoder.eof:
        raise AlloyResponseError(f"Alloy's answer to {call} breaks off in the middle of its {encoding} data.")


def _decoder(encoding: str, call: str) -> _Decoder:
    # alloysync asks for gzip and deflate only (Accept-Encoding); anything else was not asked for.
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        # Servers disagree on "deflate": zlib-wrapped (RFC 9110) or raw; 32 + MAX_WBITS reads either
        # wrapped form, and raw deflate is too rare to guess at.
        return zlib.decompressobj(zlib.MAX_WBITS | 32)
    raise AlloyResponseError(
        f"Alloy's answer to {call} is compressed as {encoding!r}, which alloysync did not ask for "
        "and cannot read (it asks for gzip or deflate)."
    )


def _inflate(decoder: _Decoder, raw: bytes) -> Iterator[bytes]:
    # max_length bounds each step's output, so a bomb is caught within a step of the limit.
    data = raw
    while data:
        piece = decoder.decompress(data, _INFLATE_STEP)
        yield piece
        data = decoder.unconsumed_tail
        if not piece:
            return


def _deeper_than(text: str, limit: int) -> bool:
    # Python's parser recurses once per level and dies with RecursionError near 1,000 levels: count
    # the brackets outside strings first (both passes run in C; the loop sees brackets only).
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


class _NumberError(ValueError):
    """A number in the JSON that alloysync refuses; the message says which and why."""


def _parse_int(literal: str) -> int:
    _check_length(literal)
    return int(literal)


def _parse_float(literal: str) -> float:
    _check_length(literal)
    return float(literal)  # 1e400 is inf, as Python reads it: judged with the item that holds it


def _check_length(literal: str) -> None:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _NumberError(
            f"a number {len(literal):,} characters long ({literal[:12]}...); alloysync reads numbers of at "
            f"most {MAX_NUMBER_CHARS:,} characters, as Python does"
        )


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):g} MiB" if count >= 1024 * 1024 else f"{count:,} bytes"
