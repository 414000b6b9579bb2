"""The sync: items marked as jobs in Alloy become scheduled jobs.

A sync reads items, compares each with the job it maps to by content, and collects only the
differences (``alloysync.plan``). Nothing is written until the read is complete: a failed read
changes nothing. The differences are then written in bulk in one transaction, after the
mass-removal check. A sync that finds no differences writes no job or schedule at all, so beat does
not reload. Every sync, by hand, scheduled or asked for by a webhook, leaves a ``SyncRun``.

Three modes (``SyncRun.mode``):

- ``full``: every item that is a job (streamed page by page). Only a complete read can remove a job
  for being absent, and only if a second complete read agrees.
- ``incremental``: the items of the design edited since the previous sync began, less
  ALLOY_SYNC_LOOK_BACK, in every collection and whatever their flag, so that an item unflagged or
  archived is seen leaving; then Alloy's count of items that are jobs. A count that differs from
  what alloysync holds (a hard delete is invisible to edit times) turns the same sync into a full one.
- ``items``: the items a webhook named, each read by id; one Alloy says does not exist removes its job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from alloysync.client import AlloyAuthError, AlloyClient, AlloyError, AlloyItem, AlloyRequestError, ItemQuery
from alloysync.item_states import (
    ItemObservation,
    item_id_storable,
    item_observation,
    item_refusals_record,
    items_held_as_jobs,
)
from alloysync.mapping import AttributeCodes
from alloysync.metrics import CountedAlloyClient
from alloysync.models import SyncRun
from alloysync.pacing import shared_pacer
from alloysync.plan import (
    ItemRules,
    SyncConfigError,
    SyncPlan,
    sync_plan_check_attributes,
    sync_plan_confirm_removals,
    sync_plan_fill,
    sync_plan_fill_changed,
    sync_plan_settle,
)
from alloysync.run_now import run_now_observe
from alloysync.sync_alerts import jobs_newly_refused, jobs_refused_alert
from alloysync.sync_lease import SYNC_LEASE, SYNC_LEASE_TTL, LeaseKeeper, SyncAlreadyRunning, SyncLease, SyncLeaseLost
from alloysync.sync_record import sync_run_finish, sync_run_mode_record, sync_run_start
from alloysync.write_back import write_back_codes, write_back_observe
from scheduler.changes import JobChanges
from scheduler.changes_bisect import AppliedChanges, jobs_apply_changes_or_bisect
from scheduler.models import Job
from scheduler.selectors import JobState, job_states_for_source

logger = logging.getLogger(__name__)

__all__ = [
    "SYNC_LEASE",
    "SyncAlreadyRunning",
    "SyncConfig",
    "SyncConfigError",
    "SyncLeaseLost",
    "SyncOutcome",
    "alloy_sync",
    "alloy_sync_items",
    "alloy_sync_plan",
]

# Collections an item can move to: an incremental read looks in all of them, to see items leave.
ALL_COLLECTIONS = ("Live", "Inventory", "Archive", "Template")
# Design codes of interfaces: an item read by id belongs to one only if Alloy says so in a query.
_INTERFACE_PREFIX = "designInterfaces_"

PageCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SyncConfig:
    base_url: str
    api_key: str
    query: ItemQuery
    codes: AttributeCodes
    page_size: int
    timeout: float
    max_removal_fraction: float
    default_timezone: str
    full_sync_interval: float = 86400.0
    look_back: float = 300.0
    # Attribute codes every read notes for write-back and run-now (alloysync.item_states).
    observed_codes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"SyncConfig(base_url={self.base_url!r}, query={self.query!r})"  # never the key

    @classmethod
    def from_settings(cls) -> SyncConfig:
        secret = settings.ALLOY_API_KEY  # a config.env_secrets.Secret (None when unset): read here only
        api_key = secret.reveal() if secret else None
        required = {
            "ALLOY_API_KEY": api_key,
            "ALLOY_JOB_DESIGN": settings.ALLOY_JOB_DESIGN,
            "ALLOY_CRON_ATTRIBUTE": settings.ALLOY_CRON_ATTRIBUTE,
            "ALLOY_STEPS_ATTRIBUTE": settings.ALLOY_STEPS_ATTRIBUTE,
            "ALLOY_TITLE_ATTRIBUTE": settings.ALLOY_TITLE_ATTRIBUTE,
            "ALLOY_BASE_URL": settings.ALLOY_BASE_URL,
        }
        missing = [name for name, value in required.items() if not value]
        # An unset key is already among the missing; named again so that api_key is a str below.
        if missing or api_key is None:
            raise SyncConfigError(f"cannot sync with Alloy: set {', '.join(missing)} (see the README's configuration)")
        return cls(
            base_url=settings.ALLOY_BASE_URL,
            api_key=api_key,
            query=ItemQuery(
                design_code=settings.ALLOY_JOB_DESIGN,
                collection=settings.ALLOY_COLLECTION,
                flag_attribute=settings.ALLOY_JOB_FLAG_ATTRIBUTE or None,
            ),
            codes=AttributeCodes(
                title=settings.ALLOY_TITLE_ATTRIBUTE,
                cron=settings.ALLOY_CRON_ATTRIBUTE,
                steps=settings.ALLOY_STEPS_ATTRIBUTE,
                timezone=settings.ALLOY_TIMEZONE_ATTRIBUTE,
                time_limit=settings.ALLOY_TIME_LIMIT_ATTRIBUTE,
            ),
            page_size=settings.ALLOY_PAGE_SIZE,
            timeout=settings.ALLOY_TIMEOUT,
            max_removal_fraction=settings.ALLOY_MAX_REMOVAL_FRACTION,
            default_timezone=settings.JOB_DEFAULT_TIMEZONE,
            full_sync_interval=settings.ALLOY_FULL_SYNC_INTERVAL,
            look_back=settings.ALLOY_SYNC_LOOK_BACK,
            observed_codes=write_back_codes(),
        )

    @property
    def item_rules(self) -> ItemRules:
        return ItemRules(self.codes, self.default_timezone)

    def is_job(self, item: AlloyItem) -> bool:
        """Whether an item read without the query's filters (by edit time, or by id) is a job.

        An item whose JSON could not be read (``problem``) counts as one: unreadable attributes say
        nothing about its flag, and it must become that item's error, never a removal.
        """
        query = self.query
        if item.problem:
            return True
        if item.collection != query.collection:
            return False
        # An item read by id can be of any design; one of an interface's designs cannot be told apart.
        if item.design_code != query.design_code and not query.design_code.startswith(_INTERFACE_PREFIX):
            return False
        flag = item.attribute(query.flag_attribute) if query.flag_attribute else True
        # A flag that is no Boolean (a hostile value) is likewise the item's error, not a removal.
        return flag is True or (flag is not None and not isinstance(flag, bool))

    @property
    def settings_digest(self) -> str:
        """A fingerprint of the settings that decide which items are jobs and what they mean.

        Recorded on each SyncRun: after a change (a new attribute code, another design, another
        default zone) items unchanged in Alloy may mean something else, so only a full read will do.
        """
        query, codes = self.query, self.codes
        parts = [query.design_code, query.collection, query.flag_attribute or "", *dataclasses.astuple(codes)]
        return hashlib.sha256(json.dumps([*parts, self.default_timezone]).encode()).hexdigest()[:32]

    def changed_query(self, since: datetime) -> ItemQuery:
        """Items of the design edited after ``since``, in every collection, flagged or not."""
        return replace(self.query, flag_attribute=None, collections=ALL_COLLECTIONS, edited_after=since)

    def client(self, *, fail_fast: bool = False, max_retry_seconds: float = 120.0) -> AlloyClient:
        """A client for this configuration; ``fail_fast`` for runs by hand: a wrong ALLOY_BASE_URL
        (a name that does not resolve, a refused connection) fails at once instead of being retried.

        Its requests are paced by Alloy's rate-limit headers through one budget per endpoint shared
        by every process of the deployment (``alloysync.pacing``): syncs, webhook reads and writes alike.
        """
        return CountedAlloyClient(
            self.base_url,
            self.api_key,
            timeout=self.timeout,
            page_size=self.page_size,
            fail_fast=fail_fast,
            max_retry_seconds=max_retry_seconds,
            pacer=shared_pacer(),
        )


@dataclass
class SyncOutcome:
    """A recorded sync: what it read and decided (``plan``) and its history record (``run``)."""

    plan: SyncPlan
    run: SyncRun


def alloy_sync_plan(
    *, config: SyncConfig | None = None, client: AlloyClient | None = None, on_page: PageCallback | None = None
) -> SyncPlan:
    """What a full sync would change now, without changing or recording anything (``sync_alloy --dry-run``).

    Takes no lock. Raises SyncConfigError and AlloyError directly. ``client`` overrides the one built
    from settings (tests, benchmarks); it is not closed here.
    """
    config = config or SyncConfig.from_settings()
    with _client_for(config, client, fail_fast=True) as alloy:  # a dry run is always run by hand
        plan = SyncPlan()
        _read_all_into(plan, alloy, config, on_page)
        return plan


def alloy_sync(
    *,
    trigger: str,
    mode: str | None = None,
    allow_mass_removal: bool = False,
    config: SyncConfig | None = None,
    client: AlloyClient | None = None,
    on_page: PageCallback | None = None,
) -> SyncOutcome:
    """Run one sync and record it as a SyncRun, whatever its outcome.

    ``mode`` ``"full"`` reads every item; ``"incremental"`` reads what changed (and goes on to a full
    read if Alloy's count disagrees); None (the schedule's choice) is incremental unless a full read is
    due: none has succeeded yet, or the last began ALLOY_FULL_SYNC_INTERVAL seconds ago or more.

    Raises SyncAlreadyRunning (recording nothing) if another sync holds the lease. ``client``
    overrides the one built from settings (tests, benchmarks); it is not closed here. Every other
    way out, an interrupt or a bug included, leaves the record finished and saying why.
    """
    return _run_recorded(_Request(trigger, mode, allow_mass_removal, on_page), config, client)


def alloy_sync_items(
    item_ids: Sequence[str],
    *,
    trigger: str = SyncRun.Trigger.WEBHOOK,
    config: SyncConfig | None = None,
    client: AlloyClient | None = None,
) -> SyncOutcome:
    """Read each named item by id and apply it with the sync's mapping and rules (mode ``items``).

    An item Alloy says does not exist (ItemNotFound) removes its job; so does one read and no longer
    a job (unflagged, moved out of ALLOY_COLLECTION): both are Alloy's word about that item. Nothing
    else can remove a job here, and absence from this read means nothing. Raises SyncAlreadyRunning
    (recording nothing) if another sync holds the lease: the caller keeps the ids and tries later.
    """
    ids = list(dict.fromkeys(item_ids))  # each once, in the order given
    return _run_recorded(_Request(trigger, SyncRun.Mode.ITEMS, False, None, ids), config, client)


@dataclass(frozen=True)
class _Request:
    """What the caller asked of one sync."""

    trigger: str
    mode: str | None
    allow_mass_removal: bool
    on_page: PageCallback | None
    item_ids: list[str] = field(default_factory=list)


def _run_recorded(request: _Request, config: SyncConfig | None, client: AlloyClient | None) -> SyncOutcome:
    lease = SyncLease()
    run = sync_run_start(trigger=request.trigger, lease=lease, mode=request.mode or SyncRun.Mode.FULL)
    sync = _Sync(run, LeaseKeeper(lease), request)
    sync.keeper.start()
    try:
        return _sync_holding_lease(sync, config, client)
    finally:
        sync.keeper.stop()
        try:
            lease.release()
        except DatabaseError:
            logger.warning("sync %s could not release its lease; it lapses in %g s", run.pk, SYNC_LEASE_TTL)


@dataclass
class _Sync:
    """One recorded sync under way: its record, its lease keeper, and what the caller asked."""

    run: SyncRun
    keeper: LeaseKeeper
    request: _Request
    requests: int = 0
    # The read under way: on a failure, the record says how far it got.
    plan: SyncPlan = field(default_factory=SyncPlan)
    # A partial read applied before a full one in the same sync: its counts are recorded too.
    earlier: SyncPlan | None = None

    def keep_lease_again(self) -> None:
        """Renew the lease from a thread again (a keeper thread cannot be restarted)."""
        self.keeper = LeaseKeeper(self.keeper.lease)
        self.keeper.start()

    def progress(self, pages: int, items: int) -> None:
        if self.keeper.lost:
            raise SyncLeaseLost(f"sync {self.run.pk} lost its lease to another sync while reading; it changed nothing")
        if self.request.on_page:
            self.request.on_page(pages, items)


def _sync_holding_lease(sync: _Sync, config: SyncConfig | None, client: AlloyClient | None) -> SyncOutcome:
    try:
        config = config or SyncConfig.from_settings()
        # By hand (sync_alloy, the demo): a host never reached fails at once, naming ALLOY_BASE_URL.
        by_hand = sync.run.trigger == SyncRun.Trigger.COMMAND
        with _client_for(config, client, fail_fast=by_hand) as alloy:
            requests_before = alloy.requests_made
            try:
                status, message = _read_and_apply(sync, alloy, config)
            finally:
                sync.requests = alloy.requests_made - requests_before
    except (SyncConfigError, SyncLeaseLost, AlloyError) as exc:
        return SyncOutcome(sync.plan, _finish(sync, sync.plan, SyncRun.Status.FAILED, str(exc)))
    except DatabaseError as exc:
        # The database went away (a restart, a failover): the transaction rolled back, nothing was
        # written. Record that on a fresh connection if the database is back.
        connection.close()
        _finish(sync, sync.plan, SyncRun.Status.FAILED, f"database error, nothing was changed: {type(exc).__name__}")
        raise
    except BaseException as exc:
        # A bug, an interrupt (Ctrl-C, a worker's shutdown): still recorded, then raised as it was.
        _finish(sync, sync.plan, SyncRun.Status.FAILED, f"stopped by {type(exc).__name__}: {exc}")
        raise
    return SyncOutcome(sync.plan, _finish(sync, sync.plan, status, message))


def _read_and_apply(sync: _Sync, alloy: AlloyClient, config: SyncConfig) -> tuple[str, str]:
    """Read and apply as the request's mode says; ``sync.plan`` is the read under way. Returns the
    record's status and message."""
    mode = sync.request.mode
    sync.run.settings_digest = config.settings_digest
    if mode == SyncRun.Mode.ITEMS:
        sync_run_mode_record(sync.run, mode)
        unread: list[dict[str, str]] = []
        items = list(_items_by_id(alloy, sync.request.item_ids, unread))
        status, message = _partial(sync, alloy, config, items, complete_count=False)
        sync.plan.errors += unread  # listed in the record, but no refusal of the item's definition
        return status, message
    since = None if mode == SyncRun.Mode.FULL else _incremental_since(config)
    if since is not None:
        sync_run_mode_record(sync.run, SyncRun.Mode.INCREMENTAL)
        changed = list(alloy.iter_items(config.changed_query(since), on_page=sync.progress))
        status, message = _partial(sync, alloy, config, changed, complete_count=True)
        notes = sync.plan.notes
        if status != SyncRun.Status.SUCCEEDED or not notes or not notes[-1].startswith(_COUNT_NOTE):
            return status, message
        sync.earlier = sync.plan  # the count disagreed: go on to a full read, recording both
        sync.plan = SyncPlan(notes=[notes.pop()])
        sync.keep_lease_again()
    sync_run_mode_record(sync.run, SyncRun.Mode.FULL)
    observations: list[ItemObservation] | None = [] if config.observed_codes else None
    _read_all_into(sync.plan, alloy, config, sync.progress, observations)
    return _apply(sync, config, complete=True, observations=observations or ())


# Begins the note of an incremental sync whose count disagreed (and so went on to a full read).
_COUNT_NOTE = "Alloy counts"


def _partial(
    sync: _Sync, alloy: AlloyClient, config: SyncConfig, items: Sequence[AlloyItem | str], *, complete_count: bool
) -> tuple[str, str]:
    """Apply a partial read; with ``complete_count``, then compare Alloy's count with what is held."""
    plan = sync.plan
    ids = [entry if isinstance(entry, str) else entry.item_id for entry in items]
    sync_plan_fill_changed(plan, items, job_states_for_source(Job.Source.ALLOY, ids), config.item_rules, config.is_job)
    read = [item for item in items if isinstance(item, AlloyItem)]
    observations = [seen for item in read if (seen := item_observation(item, config.observed_codes)) is not None]
    # Counted before anything is applied: a count Alloy refuses or garbles fails the read, and a
    # failed read changes nothing.
    counted = alloy.count_items(config.query) if complete_count else None
    status, message = _apply(sync, config, complete=False, observations=observations)
    if counted is not None and status == SyncRun.Status.SUCCEEDED:
        held = items_held_as_jobs()
        if counted != held:
            plan.notes.append(f"{_COUNT_NOTE} {counted} items that are jobs, alloysync holds {held}: read them all")
            message = "; ".join(plan.notes)
    return status, message


def _items_by_id(
    alloy: AlloyClient, item_ids: Sequence[str], errors: list[dict[str, str]]
) -> Iterator[AlloyItem | str]:
    """Each item read by id; a bare id where Alloy says there is no such item.

    Alloy refusing one item (a 400 or 403 for that id: Alloy's permissions can be per item) is that
    item's error in ``errors`` and changes nothing of its job: the other items are still read. A
    refused key (401) or an outage fails the read.
    """
    for item_id in item_ids:
        try:
            item = alloy.get_item(item_id)
        except (AlloyRequestError, AlloyAuthError) as exc:
            if exc.status_code == 401:
                raise  # the key itself is refused: every read would be
            errors.append({"item_id": item_id, "title": item_id, "message": f"Alloy refused to read it: {exc}"})
            continue
        yield item if item is not None else item_id


def _incremental_since(config: SyncConfig) -> datetime | None:
    """Where an incremental read starts, or None when a full read is due."""
    succeeded = SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED)
    full = succeeded.filter(mode=SyncRun.Mode.FULL).values_list("started_at", "settings_digest").first()
    now = timezone.now()
    if full is None or now - full[0] >= timedelta(seconds=config.full_sync_interval):
        return None
    last_full, digest = full
    if digest != config.settings_digest:
        return None  # the settings changed since: what items mean may have changed too
    modes = [SyncRun.Mode.FULL, SyncRun.Mode.INCREMENTAL]
    previous = succeeded.filter(mode__in=modes).values_list("started_at", flat=True).first()
    return (previous or last_full) - timedelta(seconds=config.look_back)


def _apply(
    sync: _Sync, config: SyncConfig, *, complete: bool, observations: Sequence[ItemObservation] = ()
) -> tuple[str, str]:
    plan = sync.plan
    sync.keeper.stop()  # the apply below renews the lease itself, in its transaction
    if plan.removes_too_many(config.max_removal_fraction) and not sync.request.allow_mass_removal:
        return SyncRun.Status.REFUSED, _refusal(plan, config)
    with transaction.atomic():
        if not sync.keeper.lease.take():
            raise SyncLeaseLost(f"sync {sync.run.pk} lost its lease to another sync before writing; it changed nothing")
        newly_refused = jobs_newly_refused(plan.changes.invalid)  # before the marks: which are news
        outcome = jobs_apply_changes_or_bisect(plan.changes)
        _record_refusals(plan, outcome)
        sync_plan_settle(plan, outcome)
        refused = {error["item_id"]: error["message"] for error in plan.errors}
        read_valid = [seen.item_id for seen in observations if seen.item_id not in refused]
        changed_refusals = item_refusals_record(refused, [*plan.left, *read_valid], complete=complete)
    jobs_refused_alert(newly_refused, run=sync.run)
    _after_apply(sync, config, observations, changed_refusals)
    return SyncRun.Status.SUCCEEDED, "; ".join(plan.notes)


def _after_apply(
    sync: _Sync, config: SyncConfig, observations: Sequence[ItemObservation], changed_refusals: list[str]
) -> None:
    """Tell write-back what this read saw in Alloy and changed here; queue the runs asked for in Alloy."""
    if not config.observed_codes:
        return  # write-back and run-now are off: nothing to note
    changed = {item_id for item_id in _changed_item_ids(sync.plan, changed_refusals) if item_id_storable(item_id)}
    # A read begun before a write-back of ours landed must not be taken for Alloy's newer word.
    read_at = sync.run.started_at
    try:
        with transaction.atomic():
            write_back_observe(observations, changed, read_at=read_at)
            run_now_observe(observations, read_at=read_at)
    except DatabaseError as exc:
        # The jobs are written and committed: this sync succeeded. What Alloy shows is noted again
        # by the next read; say so rather than call the whole sync failed.
        logger.exception("sync %s: could not note what Alloy shows for write-back", sync.run.pk)
        sync.plan.notes.append(
            f"the jobs were applied, but noting what Alloy shows for write-back failed ({type(exc).__name__}); "
            "the next sync notes it again"
        )


def _record_refusals(plan: SyncPlan, outcome: AppliedChanges) -> None:
    """Each change the database refused becomes its item's error; a refused update also shows on its
    job, which keeps its last definition. Not expected (values are checked first), but if it happens,
    operators see which item and why instead of a sync that fails for everyone."""
    if not outcome.refused:
        return
    names = {external_id: spec.name for external_id, spec in plan.changes.create}
    job_ids = [refusal.key for refusal in outcome.refused if isinstance(refusal.key, int)]
    jobs = {
        pk: (external_id, name)
        for pk, external_id, name in Job.objects.filter(pk__in=job_ids).values_list("pk", "external_id", "name")
    }
    marks: list[tuple[int, str]] = []
    for refusal in outcome.refused:
        message = f"the database refused to {refusal.kind} this job: {refusal.reason}"
        if isinstance(refusal.key, int):
            item_id, title = jobs.get(refusal.key, ("", f"job {refusal.key}"))
            if refusal.kind == "update":
                marks.append((refusal.key, message))
        else:
            item_id, title = refusal.key, names.get(refusal.key, refusal.key)
        plan.errors.append({"item_id": item_id, "title": title, "message": message})
    if marks:
        jobs_apply_changes_or_bisect(JobChanges(source=Job.Source.ALLOY, invalid=marks))


def _read_all_into(
    plan: SyncPlan,
    client: AlloyClient,
    config: SyncConfig,
    on_page: PageCallback | None,
    observations: list[ItemObservation] | None = None,
) -> None:
    items = client.iter_items(config.query, on_page=on_page)
    if observations is not None:
        items = _observed(items, config.observed_codes, observations)
    sync_plan_fill(plan, items, _states(), config.item_rules)
    sync_plan_check_attributes(plan, config.item_rules, config.query.design_code)
    if plan.changes.remove:
        sync_plan_confirm_removals(plan, client.iter_items(config.query))


def _observed(items: Iterator[AlloyItem], codes: tuple[str, ...], into: list[ItemObservation]) -> Iterator[AlloyItem]:
    for item in items:
        if (seen := item_observation(item, codes)) is not None:
            into.append(seen)
        yield item


def _changed_item_ids(plan: SyncPlan, changed_refusals: list[str]) -> set[str]:
    """Items whose job this sync created, changed, marked invalid or removed, or whose refusal changed."""
    job_ids = [job_id for job_id, _ in plan.changes.update] + [job_id for job_id, _ in plan.changes.invalid]
    job_ids += plan.changes.remove
    changed = {external_id for external_id, _ in plan.changes.create} | set(changed_refusals) | set(plan.left)
    if job_ids:
        changed |= set(Job.objects.filter(pk__in=job_ids).values_list("external_id", flat=True))
    return changed


def _client_for(
    config: SyncConfig, client: AlloyClient | None, *, fail_fast: bool
) -> AbstractContextManager[AlloyClient]:
    return nullcontext(client) if client is not None else config.client(fail_fast=fail_fast)


def _states() -> dict[str, JobState]:
    return job_states_for_source(Job.Source.ALLOY)


def _refusal(plan: SyncPlan, config: SyncConfig) -> str:
    return (
        f"refused: this sync would remove {len(plan.changes.remove)} of {plan.live_jobs} live jobs, more than "
        f"ALLOY_MAX_REMOVAL_FRACTION={config.max_removal_fraction:g}; nothing was changed. If Alloy really lost "
        "those items' job flag, run `manage.py sync_alloy --allow-mass-removal`."
    )


def _finish(sync: _Sync, plan: SyncPlan, status: str, message: str) -> SyncRun:
    return sync_run_finish(sync.run, plan, earlier=sync.earlier, requests=sync.requests, status=status, message=message)
