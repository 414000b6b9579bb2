"""Which items a call from an Alloy workflow names: its body and query string, read leniently.

Alloy has no webhook subscriptions: a customer's workflow runs an Http Request action whose body is a
template they type themselves (alloy-api.md, "Push instead of poll"). So every shape such a template
can reasonably produce is accepted: ``{"itemId": ...}``, ``{"itemIds": [...]}``,
``{"item": {"itemId": ...}}`` (the whole item, as Alloy shows it, has ``itemId`` too), a bare JSON
string or number, a list, a form (``itemId=...``), a plain-text id, and ``?itemId=`` in the URL,
whatever the Content-Type says. Key names are matched without regard to case, ``_`` or ``-``.

A placeholder the workflow left empty (``""``, ``null``) names nothing; a call naming nothing asks for
an incremental sync. A value that cannot be an item id is refused, naming the problem, so that a
typo in a workflow is seen at once instead of being read from Alloy over and over. Beyond the sync's
own rules for ids, a named id must be one token of letters, digits, ``-`` and ``_`` (Alloy's are 24
hex digits): a placeholder the template left unfilled (``{{item.itemId}}``) is refused here, where
the workflow's author sees it, rather than sent to Alloy, which would refuse it in every read.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

# Private in mapping.py, reused so that the webhook and the sync agree on what an item id may be.
from alloysync.mapping import _item_id_error

#: Bytes a call's body may take: an id or a list of them is a few hundred; a whole item a few KiB.
MAX_BODY_BYTES = 64 * 1024
#: Items one call may name (a workflow names one; a hand-made call a batch). More is refused whole.
MAX_ITEMS_PER_CALL = 1000

# Keys after folding: "itemId", "item_id", "ItemIds", "item-ids" all name items.
_ONE_ID_KEYS = frozenset({"itemid"})
_LIST_KEYS = frozenset({"itemids"})
_ITEM_KEYS = frozenset({"item"})
# A list of ids in one text value (a form field, a query parameter): commas, semicolons or spaces.
_ID_SEPARATORS = re.compile(r"[\s,;]+")
# What a named id may be written with (and so a plain-text body taken as one id).
_ID_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class WebhookCallError(ValueError):
    """The call names something that cannot be an item id, or is not readable; the message says what."""


def item_ids_from_call(body: bytes, query: Iterable[tuple[str, str]]) -> list[str]:
    """The item ids a call names, in order, each once; empty if it names none.

    ``query`` is the URL's parameters as (name, value) pairs. Raises WebhookCallError for a body that
    is neither JSON, a form nor one id, for a value that cannot be an item id, and for more than
    ``MAX_ITEMS_PER_CALL`` ids.
    """
    named = [*_ids_from_pairs(query), *_ids_from_body(body)]
    ids = list(dict.fromkeys(_checked(value) for value in named if not _blank(value)))
    if len(ids) > MAX_ITEMS_PER_CALL:
        raise WebhookCallError(f"the call names {len(ids)} items; at most {MAX_ITEMS_PER_CALL} are read per call")
    return ids


def _ids_from_body(body: bytes) -> list[Any]:
    """The ids in a body, judged by what it holds: workflows send whatever Content-Type was typed, or none."""
    try:
        text = body.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise WebhookCallError("the body is not UTF-8 text") from None
    if not text:
        return []
    try:
        # Iterated inside the try: a body nested almost to the parser's limit recurses here too.
        return list(_ids_from_json(json.loads(text, object_pairs_hook=_JSONObject)))
    except RecursionError:
        raise WebhookCallError("the body's JSON is nested too deeply") from None
    except ValueError as exc:
        if text[:1] in "{[":  # meant as JSON: say what is wrong with it, not that it is no JSON
            raise WebhookCallError(f"the body's JSON cannot be read: {str(exc)[:120]}") from None
        # not JSON (a form never is): a form or a plain id, perhaps
    if "=" in text:
        return list(_ids_from_pairs(urllib.parse.parse_qsl(text, keep_blank_values=True)))
    if _ID_TOKEN.fullmatch(text):
        return [text]
    raise WebhookCallError('the body is neither JSON, a form nor one item id (send {"itemId": "..."})')


class _JSONObject:
    """A JSON object as all of its key-value pairs, repeated keys included (a dict keeps the last)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def _ids_from_json(value: Any) -> Iterator[Any]:
    """The ids in a JSON body: an object's item keys, each element of a list, or the value itself."""
    if isinstance(value, _JSONObject):
        for key, inner in value.pairs:  # every pair: {"itemId": a, "itemId": b} names both
            folded = _folded(key)
            if folded in _ONE_ID_KEYS:
                yield inner
            elif folded in _LIST_KEYS:
                yield from _list_values(inner)
            elif folded in _ITEM_KEYS:
                yield from _ids_from_json(inner) if isinstance(inner, _JSONObject) else [inner]
    elif isinstance(value, list):
        for element in value:
            yield from _ids_from_json(element) if isinstance(element, _JSONObject) else [element]
    else:
        yield value


def _ids_from_pairs(pairs: Iterable[tuple[str, str]]) -> Iterator[str]:
    for key, value in pairs:
        folded = _folded(key)
        if folded in _ONE_ID_KEYS:
            yield value
        elif folded in _LIST_KEYS:
            yield from _ID_SEPARATORS.split(value)


def _list_values(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):  # a template that joined the ids into one string
        return _ID_SEPARATORS.split(value)
    return [value]


def _folded(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _blank(value: Any) -> bool:
    """An empty placeholder: the workflow had no value to put there, so the call names nothing."""
    return value is None or (isinstance(value, str) and not value.strip())


def _checked(value: Any) -> str:
    """``value`` as an item id, or WebhookCallError naming what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WebhookCallError(f"an item id must be text, not {_kind(value)}")
    item_id = str(value).strip()
    problem = _item_id_error(item_id)
    if problem:
        raise WebhookCallError(problem)
    if not _ID_TOKEN.fullmatch(item_id):
        raise WebhookCallError(
            f"item id {item_id!r} is not one word of letters, digits, '-' and '_' (an unfilled template value?)"
        )
    return item_id


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a fractional number"
    if isinstance(value, (dict, _JSONObject)):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
