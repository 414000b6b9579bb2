"""The request body's one format: JSON, read without ever failing with a 500, refused (400 naming where)
when it holds what no field could mean, before any serializer or database sees it:

- a lone surrogate (``"\\ud800"``) in a key or a string: not text; UTF-8, PostgreSQL and the renderer
  all refuse it;
- a key twice in one object: ``json`` keeps the last silently, so a client's bug (or a second key
  smuggled past a proxy's filter) would go unnoticed;
- a number too long to read (over 4300 digits) or too large for a float (``1e400``, infinity);
  ``NaN`` and ``Infinity``, which are not JSON;
- a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes: 413, not read beyond the limit.

Where is a dotted path (``kwargs.1.message``), as the serializers' errors name fields.
"""

from __future__ import annotations

import json
import math
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from scheduler.api.errors import too_large

#: Digits Python reads in an integer (its default ``sys.get_int_max_str_digits``).
MAX_INT_DIGITS = 4300
#: Longest key shown in a path: a megabyte-long key would make a megabyte-long error.
_KEY_SHOWN = 50


class _Refused:
    """A value the body cannot have, kept in place so the walk below names where it is."""

    def __init__(self, message: str) -> None:
        self.message = message


class _Object(dict[str, Any]):
    """A JSON object, with the keys it held more than once."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object()
    result.duplicates = []
    for key, value in pairs:
        if key in result and key not in result.duplicates:
            result.duplicates.append(key)
        result[key] = value
    return result


def _int(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Refused(f"a number in the body has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 30 else f"{text[:30]}..."
        return _Refused(f"{shown} is too large a number (it overflows to infinity)")
    return value


def _constant(text: str) -> _Refused:
    return _Refused(f"{text} is not a number JSON allows")


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False  # a lone surrogate: the only str UTF-8 cannot hold
    return True


_SURROGATE = "contains a lone surrogate (U+D800 to U+DFFF), which is not text"


def _shown(key: str) -> str:
    return key[:_KEY_SHOWN]


def check_body(data: Any) -> None:
    """Raise ValidationError ``{where: [what]}`` at the first thing in ``data`` (as read by
    ``JSONParser``) no field could mean; iterative, so any depth ``json`` read is walked."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        where = path or "non_field_errors"
        if isinstance(value, _Refused):
            raise ValidationError({where: [value.message]})
        if isinstance(value, str):
            if not _is_text(value):
                raise ValidationError({where: [f"this string {_SURROGATE}"]})
        elif isinstance(value, dict):
            inside = f"in {path}" if path else "in the body"
            for key in value:
                if not _is_text(key):
                    raise ValidationError({where: [f"a key {inside} {_SURROGATE}"]})
            duplicates = getattr(value, "duplicates", [])
            if duplicates:
                raise ValidationError({where: [f"the key {_shown(duplicates[0])!r} is given twice {inside}"]})
            stack.extend((f"{path}.{_shown(key)}" if path else _shown(key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{index}" if path else str(index), item) for index, item in enumerate(value))


class JSONParser(parsers.JSONParser):
    """DRF's media type and charset; the reading and checking above."""

    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        context = parser_context or {}
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = context.get("request")
        if limit is not None and request is not None:
            # Told the size up front: refused without reading a byte of it.
            declared = str(request.META.get("CONTENT_LENGTH") or "0")
            if declared.isascii() and declared.isdigit() and int(declared[:20]) > limit:
                raise too_large(limit)
        try:
            raw = stream.read() if limit is None else stream.read(limit + 1)
        except RequestDataTooBig:
            raise too_large(limit) from None
        if limit is not None and len(raw) > limit:
            raise too_large(limit)
        encoding = context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"JSON parse error - the body is not {encoding} text") from None
        try:
            data = json.loads(
                text, object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
            )
        except RecursionError:
            # json reports nesting past Python's recursion limit as RecursionError, not ValueError.
            raise ParseError("JSON parse error - the body is nested too deeply to read") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        check_body(data)
        return data
