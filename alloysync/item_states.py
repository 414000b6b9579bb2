"""What a read of Alloy leaves behind besides job changes: each item's refusal, and what Alloy shows.

A job holds its own refusal (``Job.sync_error``), but an item that was never valid has no job: its
refusal is kept on its ``ItemState`` row instead, so that Alloy can be told and so that an
incremental sync can count how many items alloysync holds as jobs, valid or not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, Model, OuterRef

from alloysync.client import AlloyItem
from alloysync.models import ItemState
from scheduler.models import Job
from scheduler.storable import storable_json, storable_text
from scheduler.stored_values import text_problem


def _max_length(model: type[Model], name: str) -> int:
    """The declared size of a text column, so the limits below follow the models' own."""
    size = getattr(model._meta.get_field(name), "max_length", None)
    if not isinstance(size, int):
        raise TypeError(f"{model.__name__}.{name} has no max_length")
    return size


# Column sizes of ItemState (and Job.external_id): what Alloy sends beyond them is not kept as is.
ITEM_ID_CHARS = min(_max_length(ItemState, "item_id"), _max_length(Job, "external_id"))
SIGNATURE_CHARS = _max_length(ItemState, "signature")
COLLECTION_CHARS = _max_length(ItemState, "collection")
#: An observed attribute value is kept up to this size as JSON (a larger one is cut, visibly).
MAX_OBSERVED_BYTES = 64 * 1024
MAX_REFUSAL_CHARS = 4000
#: Begins the row key standing in for an item id no row can hold.
UNSTORABLE_ID_PREFIX = "~"


@dataclass(frozen=True, slots=True)
class ItemObservation:
    """An item as a read found it, reduced to what write-back needs.

    ``values`` maps each write-back and run-now attribute code to its value in Alloy (None when the
    item has none: Alloy leaves such attributes out).
    """

    item_id: str
    signature: str
    collection: str
    values: Mapping[str, Any]


def item_observation(item: AlloyItem, codes: Iterable[str]) -> ItemObservation | None:
    """The observation of ``item`` for the attribute ``codes``, in values the database stores.

    Everything here comes from Alloy, where any user can type anything into an attribute: values are
    made storable (``storable_json``: NUL, NaN, depth and size; a hostile value then simply differs
    from what alloysync would write, and is written over), a signature or collection too long to keep
    is kept as unknown (the writer reads the item first). None for an item whose id no row can hold:
    it can be no job either (``alloysync.mapping`` refuses it), so there is nothing to write back.
    """
    if not item_id_storable(item.item_id):
        return None
    values = {code: storable_json(item.attribute(code), max_bytes=MAX_OBSERVED_BYTES) for code in codes}
    return ItemObservation(
        item.item_id,
        kept_or_unknown(item.signature, SIGNATURE_CHARS),
        kept_or_unknown(item.collection, COLLECTION_CHARS),
        values,
    )


def item_id_storable(item_id: str) -> bool:
    """Whether ``item_id`` fits an ``ItemState`` row (and a job's external id) as it is."""
    return 0 < len(item_id) <= ITEM_ID_CHARS and text_problem(item_id) is None


def item_state_key(item_id: str) -> str:
    """The row key of ``item_id``: itself, or for an id no row can hold (too long, NUL) a stand-in
    derived from it, so that a refused item is still counted once, and never written to."""
    if item_id_storable(item_id):
        return item_id
    return UNSTORABLE_ID_PREFIX + hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:63]


def kept_or_unknown(text: str, max_chars: int) -> str:
    """``text`` if a column of ``max_chars`` keeps it as it is, else "" (unknown): a signature or a
    collection cut or escaped would be a wrong one, and an unknown one is read again when needed."""
    return text if len(text) <= max_chars and text_problem(text) is None else ""


def item_refusals_record(refused: Mapping[str, str], valid: Iterable[str], *, complete: bool) -> list[str]:
    """Keep each refused item's message, forget the refusal of each item now valid or gone.

    ``refused`` maps item id to message for items read and refused; ``valid`` are item ids read and
    accepted, or read and found no longer a job. With ``complete`` (every item was read), refusals of
    items not read at all are forgotten too: they are no longer jobs. Writes only what differs;
    returns the item ids whose refusal changed. Ids and messages are Alloy's: both are kept in a
    form the database stores (``item_state_key``, ``storable_text``).
    """
    refused = {
        item_state_key(item_id): storable_text(message, MAX_REFUSAL_CHARS) for item_id, message in refused.items()
    }
    valid = [item_state_key(item_id) for item_id in valid]
    changed: list[str] = []
    known = dict(ItemState.objects.exclude(refusal="").values_list("item_id", "refusal"))
    clear = [item_id for item_id in valid if item_id in known]
    if complete:
        clear += [item_id for item_id in known if item_id not in refused]
    clear = sorted(set(clear) - set(refused))
    if clear:
        ItemState.objects.filter(item_id__in=clear).update(refusal="")
        changed += clear
    news = {item_id: message for item_id, message in refused.items() if known.get(item_id) != message}
    if news:
        existing = list(ItemState.objects.filter(item_id__in=news).only("pk", "item_id"))
        for row in existing:
            row.refusal = news[row.item_id]
        ItemState.objects.bulk_update(existing, ["refusal"])
        held = {row.item_id for row in existing}
        new_rows = [ItemState(item_id=item_id, refusal=news[item_id]) for item_id in news if item_id not in held]
        ItemState.objects.bulk_create(new_rows)
        changed += list(news)
    # Stand-ins are counted, never written to: they name no item Alloy could edit.
    return [item_id for item_id in changed if not item_id.startswith(UNSTORABLE_ID_PREFIX)]


def items_held_as_jobs() -> int:
    """How many Alloy items alloysync holds as jobs: scheduled jobs, plus refused items without one.

    The number an incremental sync compares with Alloy's count of items that are jobs: they differ
    after a hard delete, or anything else an edit-time query cannot see.
    """
    scheduled = Job.objects.filter(source=Job.Source.ALLOY, periodic_task__isnull=False).exclude(external_id="")
    refused_only = ItemState.objects.exclude(refusal="").exclude(
        Exists(scheduled.filter(external_id=OuterRef("item_id")))
    )
    return scheduled.count() + refused_only.count()
