"""What a read of Alloy leaves behind besides job changes: each item's refusal, and what Alloy shows.

A job holds its own refusal (``Job.sync_error``), but an item that was never valid has no job: its
refusal is kept on its ``ItemState`` row instead, so that Alloy can be told and so that an
incremental sync can count how many items alloysync holds as jobs, valid or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef

from alloysync.client import AlloyItem
from alloysync.models import ItemState
from scheduler.models import Job


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


def item_observation(item: AlloyItem, codes: Iterable[str]) -> ItemObservation:
    """The observation of ``item`` for the attribute ``codes``."""
    values = {code: item.attribute(code) for code in codes}
    return ItemObservation(item.item_id, item.signature, item.collection, values)


def item_refusals_record(refused: Mapping[str, str], valid: Iterable[str], *, complete: bool) -> list[str]:
    """Keep each refused item's message, forget the refusal of each item now valid or gone.

    ``refused`` maps item id to message for items read and refused; ``valid`` are item ids read and
    accepted, or read and found no longer a job. With ``complete`` (every item was read), refusals of
    items not read at all are forgotten too: they are no longer jobs. Writes only what differs;
    returns the item ids whose refusal changed.
    """
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
        existing = set(ItemState.objects.filter(item_id__in=news).values_list("item_id", flat=True))
        new_rows = [ItemState(item_id=item_id, refusal=news[item_id]) for item_id in news if item_id not in existing]
        ItemState.objects.bulk_create(new_rows)
        for item_id in existing:
            ItemState.objects.filter(item_id=item_id).update(refusal=news[item_id])
        changed += list(news)
    return changed


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
