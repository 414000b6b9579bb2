"""Any value made into one the database stores: for records of what happened, which must not fail.

A run's outcome is whatever job code returned or raised; the sync's records hold what Alloy sent.
Neither may be refused when saved, or the record it belongs to is lost with it. PostgreSQL refuses
a NUL character in text and jsonb, and unpaired surrogates (``"\\ud800"``) are not Unicode at all;
SQLite keeps both, so a value can pass on one database and fail on the other. JSON has no NaN or
infinity, only string keys, and Python's own ``json`` stops at about a thousand levels of nesting
and at integers of over 4,300 digits, so such values could be stored but never read back.

Nothing here refuses: each function returns a value in a safe form, changed visibly where it had to
change (``\\x00``, ``\\ud800``, a ``[...]`` note) and cut with a marker saying how much was cut. They
never raise on the values they are given. (To *refuse* a bad value instead, as a job definition
must, see ``scheduler.stored_values``.)
"""

from __future__ import annotations

import json
import math
import re
import sys

from django.core.serializers.json import DjangoJSONEncoder

from scheduler.types import JSONValue

#: Results nest at most this deep; deeper containers are replaced by a note. Far from Python's
#: recursion limit, so writing and reading the JSON back can never hit it.
MAX_JSON_DEPTH = 100
#: Python converts integers of at most this many digits to and from text (``sys.int_info``); ``json``
#: could neither write nor read back a longer one, so it is stored as a note.
_INT_MAX_DIGITS = sys.int_info.default_max_str_digits
#: A note shorter than this cannot hold a marker; text is then cut without one.
_MIN_CHARS_FOR_MARKER = 48

# NUL (which PostgreSQL refuses) and the surrogate range: in a Python str every code point in it is
# unpaired, since a real astral character is one code point, never two surrogates.
_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str, max_chars: int) -> str:
    """``value`` as text every supported database stores, at most ``max_chars`` characters long.

    NUL is written ``\\x00`` and each unpaired surrogate ``\\udXXX``, visibly. Text still longer than
    ``max_chars`` keeps its start and its end (where a traceback's frames and its message are) with
    ``[... N characters cut ...]`` between; below 48 characters it is simply cut at ``max_chars``.
    Never raises on any ``str`` (a subclass's own ``__str__`` is not called).
    """
    text = escape_unstorable(value)
    if len(text) <= max_chars:
        return text
    if max_chars < _MIN_CHARS_FOR_MARKER:
        return text[: max(max_chars, 0)]
    # The marker's length depends on the count it shows; sizing it for the whole length first means
    # the real (smaller) count never makes the result longer than max_chars.
    kept = max_chars - len(_cut_marker(len(text)))
    head = (kept + 1) // 2
    tail = kept - head
    marker = _cut_marker(len(text) - kept)
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")


def escape_unstorable(value: str) -> str:
    """``value`` with NUL written ``\\x00`` and unpaired surrogates ``\\udXXX``; nothing else changes."""
    text = str.__str__(value)  # a plain str, whatever subclass came in
    if _UNSTORABLE_CHARACTERS.search(text) is None:
        return text
    return _UNSTORABLE_CHARACTERS.sub(_escaped_character, text)


def storable_json(value: object, *, max_bytes: int | None = None) -> JSONValue:
    """``value`` as JSON that jsonb and SQLite store and Python reads back the same.

    Kept as they are: ``None``, booleans, text (escaped as ``storable_text`` does), finite floats,
    integers of up to about 4,300 digits, and lists and dicts of these. Changed: tuples become lists; dict
    keys become text as ``json`` writes them (``1`` -> ``"1"``, ``None`` -> ``"null"``), other keys
    their ``repr``; dates, decimals and UUIDs become text as Django writes them; anything else
    (a set, NaN, an object) becomes its ``repr``. Replaced by a ``[...]`` note: containers nested
    deeper than ``MAX_JSON_DEPTH``, a container inside itself, an integer too long, an object whose
    ``repr`` raises. If the JSON is over ``max_bytes`` bytes (UTF-8, ``\\uXXXX`` escapes counted as
    written), ``{"truncated": true, "bytes": size, "preview": <its first max_bytes // 2 characters>}``
    is returned instead. Never raises an ``Exception``.
    """
    safe = _storable(value, depth=0, enclosing=set())
    if max_bytes is None:
        return safe
    text = json.dumps(safe)  # safe holds only JSON values, so this cannot fail
    if len(text) <= max_bytes:  # ASCII (json escapes the rest), so characters are bytes
        return safe
    return {"truncated": True, "bytes": len(text), "preview": text[: max_bytes // 2]}


def _storable(value: object, *, depth: int, enclosing: set[int]) -> JSONValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return escape_unstorable(value)
    if isinstance(value, int):
        return _storable_int(int.__int__(value))
    if isinstance(value, float):
        number = float.__float__(value)
        return number if math.isfinite(number) else repr(number)
    if isinstance(value, list | tuple | dict):
        return _storable_container(value, depth=depth, enclosing=enclosing)
    return _leaf_text(value)


def _storable_container(
    value: list[object] | tuple[object, ...] | dict[object, object], *, depth: int, enclosing: set[int]
) -> JSONValue:
    kind = type(value).__name__
    if id(value) in enclosing:
        return f"[a {kind} inside itself: not stored again]"
    if depth >= MAX_JSON_DEPTH:
        return f"[a {kind} nested deeper than {MAX_JSON_DEPTH} levels: not stored]"
    enclosing.add(id(value))
    try:
        inner = depth + 1
        if isinstance(value, dict):
            return {
                _key_text(key): _storable(item, depth=inner, enclosing=enclosing) for key, item in dict.items(value)
            }
        return [_storable(item, depth=inner, enclosing=enclosing) for item in _plain_items(value)]
    finally:
        enclosing.discard(id(value))


def _plain_items(value: list[object] | tuple[object, ...]) -> list[object]:
    # The base class's own iteration: a subclass's __iter__ is job code, and may raise.
    return list.copy(value) if isinstance(value, list) else list(tuple.__iter__(value))


def _storable_int(value: int) -> JSONValue:
    # An integer of b bits has at most b * log10(2) + 1 digits; the process's own limit may be lower.
    limit = min(sys.get_int_max_str_digits() or _INT_MAX_DIGITS, _INT_MAX_DIGITS)
    if value.bit_length() * math.log10(2) + 1 <= limit:
        return value
    return f"[an integer of {value.bit_length():,} bits: too large to store as a number]"


def _key_text(key: object) -> str:
    """A dict key as text, as ``json.dumps`` would write it where it can."""
    if isinstance(key, str):
        return escape_unstorable(key)
    if key is None or isinstance(key, bool | int | float):
        stored = _storable(key, depth=0, enclosing=set())
        return stored if isinstance(stored, str) else json.dumps(stored)
    return _leaf_text(key)


def _leaf_text(value: object) -> str:
    """A value JSON has no type for, as Django's encoder writes it (dates, decimals...) or its repr."""
    try:
        text = DjangoJSONEncoder().default(value)
    except Exception:  # noqa: BLE001 - TypeError for most types; any other error means the same: use repr
        text = _safe_repr(value)
    return escape_unstorable(text if isinstance(text, str) else _safe_repr(text))


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a repr that raises is job code's bug, not the record's
        return f"[a {_type_name(value)} whose repr raised {_type_name(exc)}]"
    return str.__str__(text) if isinstance(text, str) else f"[a {_type_name(value)} with an unreadable repr]"


def _type_name(value: object) -> str:
    return type(value).__qualname__


def _escaped_character(match: re.Match[str]) -> str:
    character = match.group()
    return "\\x00" if character == "\x00" else f"\\u{ord(character):04x}"


def _cut_marker(count: int) -> str:
    return f" [... {count:,} characters cut ...] "
