"""Each job's state written back onto its Alloy item: marked "to write" cheaply, written by one worker.

Marking is a database write only, and is all that happens inside a run, a web request or a sync:
``ItemState.dirty_since`` says an item's state may be out of date in Alloy (set once: the oldest mark
keeps the item's place in the queue). ``write_back_pass``, the Celery task ``alloysync.write_back``
sent by beat, then works out each dirty item's state from the database *at write time* (so many
marks coalesce into one edit of the latest state) and sends only the attributes Alloy does not
already show, as far as ``ALLOY_WRITE_RATE`` allows over the last 60 s (``ItemEdit``). One writer at a
time holds the ``alloy-write-back`` lease. A write that fails keeps the item dirty with a back-off.

A row being written has ``dirty_since`` cleared and ``next_attempt_at`` set to when the claim lapses:
a mark that arrives meanwhile sets ``dirty_since`` again and is written by the next pass, and a
writer that dies mid-write leaves a lapsed claim that the next pass marks dirty again. Nothing marked
is lost either way.

``ItemState.written`` holds what Alloy showed for our codes, after our last write or at the last
read: comparing with it is how alloysync's own edits are never taken for a change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from alloysync.client import (
    AlloyAuthError,
    AlloyClient,
    AlloyError,
    AlloyItem,
    AlloyUnavailableError,
    item_not_found,
)
from alloysync.item_states import (
    COLLECTION_CHARS,
    MAX_OBSERVED_BYTES,
    SIGNATURE_CHARS,
    ItemObservation,
    kept_or_unknown,
)
from alloysync.models import ItemEdit, ItemState
from alloysync.write_back_state import (
    JobStatus,
    WriteBackCodes,
    desired_values,
    item_status,
    one_line,
    values_differing,
    values_equal,
)
from scheduler.leases import lease_hold, lease_holder, lease_release
from scheduler.models import Job, JobRun
from scheduler.storable import storable_json

logger = logging.getLogger(__name__)

__all__ = [
    "WRITE_BACK_LEASE",
    "WriteBackPass",
    "write_back_codes",
    "write_back_enabled",
    "write_back_mark_items",
    "write_back_mark_jobs",
    "write_back_observe",
    "write_back_pass",
]

WRITE_BACK_LEASE = "alloy-write-back"
#: Seconds the writer's lease lasts; renewed before each item, so a pass never outlives it unseen.
WRITE_BACK_LEASE_TTL = 120.0
#: A row being written is claimed this long; a writer that died mid-write is noticed after it.
CLAIM_SECONDS = 300
#: The window ALLOY_WRITE_RATE counts over, and how long ItemEdit rows are kept beyond it.
RATE_WINDOW = timedelta(seconds=60)
_EDIT_RETENTION = timedelta(minutes=10)
#: Back-off after a failed write: doubling from the first, capped; a refused (403) item waits longest.
BACKOFF_FIRST_SECONDS = 15
BACKOFF_MAX_SECONDS = 30 * 60
LOCKED_BACKOFF_SECONDS = 6 * 3600
#: One attempt per request (the client retries nothing): the back-off is the retry, and a write
#: sends at most two PUTs (the second after a signature mismatch), which the rate check allows for.
_CLIENT_RETRY_SECONDS = 0.0
_ERROR_MAX_CHARS = 1000
_BULK_CHUNK = 500


def write_back_codes() -> tuple[str, ...]:
    """Every configured write-back and run-now attribute code: what a sync collects into
    ``ItemObservation.values``. Empty when write-back is off."""
    return WriteBackCodes.from_settings().all


def write_back_enabled() -> bool:
    """Whether any write-back or run-now attribute is configured; off costs nothing."""
    return WriteBackCodes.from_settings().enabled


# --- marking --------------------------------------------------------------------------------------


def write_back_mark_jobs(job_ids: Sequence[int], *, now: datetime | None = None) -> None:
    """Mark the items of these jobs (Alloy jobs only) to be written; one query, two when a mark is due.

    The job_state_changed receiver: called once per finished run, so kept to a select of the jobs
    with their items' rows, then one update or insert.
    """
    if not job_ids or not write_back_enabled():
        return
    states = ItemState.objects.filter(item_id=OuterRef("external_id"))
    rows = (
        Job.objects.filter(pk__in=list(job_ids), source=Job.Source.ALLOY)
        .exclude(external_id="")
        .annotate(has_row=Exists(states), dirty=Exists(states.filter(dirty_since__isnull=False)))
        .values_list("external_id", "has_row", "dirty")
    )
    now = now or timezone.now()
    to_mark = [item_id for item_id, has_row, dirty in rows if has_row and not dirty]
    to_create = [item_id for item_id, has_row, _ in rows if not has_row]
    if to_mark:
        ItemState.objects.filter(item_id__in=to_mark, dirty_since__isnull=True).update(dirty_since=now)
    if to_create:
        ItemState.objects.bulk_create(
            [ItemState(item_id=item_id, dirty_since=now) for item_id in to_create], ignore_conflicts=True
        )


def write_back_mark_items(item_ids: Iterable[str], *, now: datetime | None = None) -> None:
    """Mark these items to be written, creating their rows if missing (an already dirty one keeps its place)."""
    ids = sorted(set(item_ids))
    if not ids:
        return
    now = now or timezone.now()
    for chunk in _chunks(ids):
        ItemState.objects.filter(item_id__in=chunk, dirty_since__isnull=True).update(dirty_since=now)
        ItemState.objects.bulk_create(
            [ItemState(item_id=item_id, dirty_since=now) for item_id in chunk], ignore_conflicts=True
        )


def write_back_observe(
    observations: Sequence[ItemObservation],
    changed_item_ids: Iterable[str],
    *,
    read_at: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Take note of what a read found in Alloy, and mark what must be written.

    Marks every changed item, and every observed item whose values differ from ``ItemState.written``
    (or that has no row: its first state must be written); keeps the observed signature and
    collection so that the writer can edit without reading first. An observation equal to what is
    stored writes nothing. ``read_at``, when the read began: an observation from a read begun before
    our last write landed shows Alloy as it was before that write, and is ignored.
    """
    codes = WriteBackCodes.from_settings()
    if not codes.enabled:
        return
    now = now or timezone.now()
    changed = set(changed_item_ids)
    by_id = {observation.item_id: observation for observation in observations}
    rows = _rows_by_item(by_id)
    new_rows: list[ItemState] = []
    updated: list[ItemState] = []
    resigned: list[ItemState] = []
    for item_id, observation in by_id.items():
        row = rows.get(item_id)
        if row is None:
            new_rows.append(_observed_row(ItemState(item_id=item_id, dirty_since=now), observation, codes))
            changed.discard(item_id)
        elif read_at is not None and row.written_at is not None and read_at < row.written_at:
            continue  # read before our own write landed: Alloy no longer shows this
        elif not values_equal(codes, observation.values, row.written):
            row.dirty_since = row.dirty_since or now
            updated.append(_observed_row(row, observation, codes))
            changed.discard(item_id)
        elif (row.signature, row.collection) != (observation.signature, observation.collection):
            resigned.append(_observed_row(row, observation, codes))  # edited elsewhere: keep the signature fresh
    if new_rows:
        ItemState.objects.bulk_create(new_rows, ignore_conflicts=True, batch_size=_BULK_CHUNK)
    if updated:
        fields = ["written", "signature", "collection", "dirty_since"]
        ItemState.objects.bulk_update(updated, fields, batch_size=_BULK_CHUNK)
    if resigned:
        # Not dirty_since: a mark made since the rows were read must stand.
        ItemState.objects.bulk_update(resigned, ["signature", "collection"], batch_size=_BULK_CHUNK)
    write_back_mark_items(changed, now=now)


def _rows_by_item(observed: dict[str, ItemObservation]) -> dict[str, ItemState]:
    rows: dict[str, ItemState] = {}
    for chunk in _chunks(sorted(observed)):
        fields = ["id", "item_id", "written", "signature", "collection", "dirty_since", "written_at"]
        rows.update((row.item_id, row) for row in ItemState.objects.filter(item_id__in=chunk).only(*fields))
    return rows


def _observed_row(row: ItemState, observation: ItemObservation, codes: WriteBackCodes) -> ItemState:
    row.written = {code: observation.values.get(code) for code in codes.all}
    row.signature, row.collection = observation.signature, observation.collection
    return row


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _BULK_CHUNK):
        yield values[start : start + _BULK_CHUNK]


# --- writing --------------------------------------------------------------------------------------


@dataclass
class WriteBackPass:
    """What one pass did. ``held``: whether it had the lease (another writer was busy otherwise)."""

    held: bool = True
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    budget_spent: bool = False
    #: Items still due once the pass ended (0 when it wrote everything it could).
    pending: int = 0

    def __str__(self) -> str:
        if not self.held:
            return "skipped: another write-back pass is running"
        return (
            f"{len(self.written)} written, {len(self.unchanged)} already shown, {len(self.failed)} failed, "
            f"{len(self.gone)} gone, {self.pending} pending{' (rate budget spent)' if self.budget_spent else ''}"
        )


Clock = Callable[[], datetime]


def write_back_pass(
    *, client: AlloyClient | None = None, now: Clock | None = None, max_items: int | None = None
) -> WriteBackPass:
    """Write the states of dirty items, oldest first, as far as the rate budget allows now; then end.

    ``client`` overrides the one built from settings (tests; not closed here). ``now`` is a callable
    returning the time (tests move it), default ``timezone.now``.
    """
    clock = now or timezone.now
    codes = WriteBackCodes.from_settings()
    if not codes.enabled:
        return WriteBackPass(pending=0)
    holder = lease_holder()
    if not lease_hold(name=WRITE_BACK_LEASE, holder=holder, ttl=WRITE_BACK_LEASE_TTL):
        return WriteBackPass(held=False)
    try:
        return _pass(codes, holder, client, clock, max_items)
    finally:
        lease_release(name=WRITE_BACK_LEASE, holder=holder)


def _pass(
    codes: WriteBackCodes, holder: str, client: AlloyClient | None, clock: Clock, max_items: int | None
) -> WriteBackPass:
    result = WriteBackPass()
    start = clock()
    _reclaim_lapsed(start)
    ItemEdit.objects.filter(sent_at__lt=start - _EDIT_RETENTION).delete()
    due = list(_due(start).values_list("item_id", flat=True)[: max_items or 1000])
    if not due:
        return result
    own_client = client is None
    alloy = client or _client()
    try:
        for item_id in due:
            if not lease_hold(name=WRITE_BACK_LEASE, holder=holder, ttl=WRITE_BACK_LEASE_TTL):
                logger.warning("write-back lost its lease; stopping the pass")
                break
            if not _room_for_edit(clock()):
                result.budget_spent = True
                break
            if not _write_item(item_id, codes, alloy, clock, result):
                break  # Alloy is unavailable or refuses the key: the rest would fare no better now
    finally:
        if own_client:
            alloy.close()
    result.pending = _due(clock()).count()
    if result.written or result.failed:
        logger.info("alloysync write-back: %s", result)
    return result


def _due(moment: datetime) -> QuerySet[ItemState]:
    ready = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=moment)
    return ItemState.objects.filter(ready, dirty_since__isnull=False).order_by("dirty_since", "pk")


def _reclaim_lapsed(moment: datetime) -> None:
    """Mark again the rows whose writer died mid-write (a claim that lapsed without an outcome)."""
    ItemState.objects.filter(dirty_since__isnull=True, next_attempt_at__lte=moment).update(
        dirty_since=F("next_attempt_at"), next_attempt_at=None
    )


def _room_for_edit(moment: datetime) -> bool:
    """Whether one more write fits ALLOY_WRITE_RATE over the last minute, leaving room for the
    second PUT a signature mismatch costs (so the rate holds even then)."""
    rate = settings.ALLOY_WRITE_RATE
    sent = ItemEdit.objects.filter(sent_at__gt=moment - RATE_WINDOW).count()
    return sent + min(2, rate) <= rate


def _write_item(item_id: str, codes: WriteBackCodes, alloy: AlloyClient, clock: Clock, result: WriteBackPass) -> bool:
    """Write one item's state if Alloy does not show it yet; False when the pass should stop."""
    moment = clock()
    row = ItemState.objects.filter(item_id=item_id).first()
    if row is None or row.dirty_since is None:
        return True  # written or deleted by someone else since the pass began
    dirty_since = row.dirty_since
    # Claim: a mark from now on sets dirty_since again, so the next pass writes it.
    ItemState.objects.filter(pk=row.pk).update(
        dirty_since=None, next_attempt_at=moment + timedelta(seconds=CLAIM_SECONDS)
    )
    wanted = desired_values(codes, _status_of(row, moment), run_now_pending=row.run_now_pending)
    changes = values_differing(codes, wanted, row.written)
    if not changes:
        ItemState.objects.filter(pk=row.pk).update(next_attempt_at=None, attempts=0, last_error="")
        result.unchanged.append(item_id)
        return True
    try:
        item = _send(alloy, row, changes, moment)
    except AlloyError as exc:
        return _failed(row, dirty_since, exc, clock(), result)
    if item is None:
        _gone(row, result)
        return True
    _landed(row, item, codes, changes, clock())
    result.written.append(item_id)
    return True


def _status_of(row: ItemState, moment: datetime) -> JobStatus:
    job = Job.objects.select_related("periodic_task").filter(source=Job.Source.ALLOY, external_id=row.item_id).first()
    last_run = None
    if job is not None:
        last_run = (
            JobRun.objects.filter(
                job=job,
                status__in=[JobRun.Status.SUCCEEDED, JobRun.Status.FAILED],
                finished_at__isnull=False,
            )
            .order_by("-finished_at", "-pk")
            .first()
        )
    return item_status(
        job=job,
        refusal=row.refusal,
        last_run=last_run,
        now=moment,
        run_now_refused=row.run_now_pending,
    )


def _send(alloy: AlloyClient, row: ItemState, changes: dict[str, Any], moment: datetime) -> AlloyItem | None:
    """PUT the changes with the signature we hold (reading the item first if we hold none); None
    when the item no longer exists. Each PUT sent is one ItemEdit, counted against the rate."""
    signature, collection = row.signature, row.collection
    if not signature:
        fresh = alloy.get_item(row.item_id)
        if fresh is None:
            return None
        signature, collection = fresh.signature, fresh.collection
    ItemEdit.objects.create(item_id=row.item_id, sent_at=moment)
    before = alloy.requests_made
    try:
        return alloy.update_item(
            row.item_id,
            collection=collection or settings.ALLOY_COLLECTION,
            signature=signature,
            attributes=changes,
        )
    except AlloyError as exc:
        if item_not_found(exc):  # Alloy's own word only: a proxy's 404 is a failure to retry
            return None
        raise
    finally:
        if alloy.requests_made - before >= 3:  # PUT refused as stale, GET, PUT again: two edits sent
            ItemEdit.objects.create(item_id=row.item_id, sent_at=moment)


def _landed(row: ItemState, item: AlloyItem, codes: WriteBackCodes, changes: dict[str, Any], moment: datetime) -> None:
    """Record what Alloy now shows. Writing the run-now attribute false ends the pending request."""
    # What Alloy answers is Alloy's: kept in a form the database stores, like any observation.
    written = {code: storable_json(item.attribute(code), max_bytes=MAX_OBSERVED_BYTES) for code in codes.all}
    update: dict[str, Any] = {
        "written": written,
        "signature": kept_or_unknown(item.signature, SIGNATURE_CHARS),
        "collection": kept_or_unknown(item.collection, COLLECTION_CHARS) or row.collection,
        "written_at": moment,
        "next_attempt_at": None,
        "attempts": 0,
        "last_error": "",
    }
    if codes.run_now and codes.run_now in changes:
        update["run_now_pending"] = False
    ItemState.objects.filter(pk=row.pk).update(**update)


def _gone(row: ItemState, result: WriteBackPass) -> None:
    # The item was deleted in Alloy: nothing to write to; the next sync removes its job.
    ItemState.objects.filter(pk=row.pk).update(
        next_attempt_at=None, attempts=0, last_error="item not found in Alloy", run_now_pending=False
    )
    result.gone.append(row.item_id)


def _failed(row: ItemState, dirty_since: datetime, exc: AlloyError, moment: datetime, result: WriteBackPass) -> bool:
    """Keep the item dirty (at its old place in the queue) with a back-off; say whether to go on."""
    attempts = row.attempts + 1
    locked = isinstance(exc, AlloyAuthError) and exc.status_code == 403
    delay = LOCKED_BACKOFF_SECONDS if locked else min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1))
    message = one_line(str(exc), _ERROR_MAX_CHARS)
    ItemState.objects.filter(pk=row.pk).update(
        dirty_since=dirty_since,
        next_attempt_at=moment + timedelta(seconds=delay),
        attempts=attempts,
        last_error=message,
    )
    result.failed[row.item_id] = message
    logger.warning("write-back of item %s failed (attempt %d; next in %d s): %s", row.item_id, attempts, delay, message)
    stop = isinstance(exc, AlloyUnavailableError) or (isinstance(exc, AlloyAuthError) and not locked)
    return not stop


def _client() -> AlloyClient:
    from alloysync.sync import SyncConfig  # the sync's settings, read when a pass needs them

    return SyncConfig.from_settings().client(max_retry_seconds=_CLIENT_RETRY_SECONDS)
