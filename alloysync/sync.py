"""The sync: items marked as jobs in Alloy become scheduled jobs.

One sync reads every item (streamed page by page), compares each with the job it maps to by content,
and collects only the differences (``alloysync.plan``). Nothing is written until the read is complete: a failed or
partial read changes nothing. The differences are then written in bulk in one transaction, after
the mass-removal check. A sync that finds no differences writes no job or schedule at all, so beat
does not reload. Every sync, by hand or scheduled, leaves a ``SyncRun``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from alloysync.client import AlloyClient, AlloyError, ItemQuery
from alloysync.mapping import AttributeCodes
from alloysync.models import SyncRun
from alloysync.plan import (
    ItemRules,
    SyncConfigError,
    SyncPlan,
    sync_plan_check_attributes,
    sync_plan_confirm_removals,
    sync_plan_fill,
    sync_plan_settle,
)
from alloysync.sync_lease import SYNC_LEASE, SYNC_LEASE_TTL, LeaseKeeper, SyncAlreadyRunning, SyncLease, SyncLeaseLost
from alloysync.sync_record import sync_run_finish, sync_run_start
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
    "alloy_sync_plan",
]

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
            ),
            page_size=settings.ALLOY_PAGE_SIZE,
            timeout=settings.ALLOY_TIMEOUT,
            max_removal_fraction=settings.ALLOY_MAX_REMOVAL_FRACTION,
            default_timezone=settings.JOB_DEFAULT_TIMEZONE,
        )

    @property
    def item_rules(self) -> ItemRules:
        return ItemRules(self.codes, self.default_timezone)

    def client(self, *, fail_fast: bool = False) -> AlloyClient:
        """A client for this configuration; ``fail_fast`` for runs by hand: a wrong ALLOY_BASE_URL
        (a name that does not resolve, a refused connection) fails at once instead of being retried."""
        return AlloyClient(
            self.base_url, self.api_key, timeout=self.timeout, page_size=self.page_size, fail_fast=fail_fast
        )


@dataclass
class SyncOutcome:
    """A recorded sync: what it read and decided (``plan``) and its history record (``run``)."""

    plan: SyncPlan
    run: SyncRun


def alloy_sync_plan(
    *, config: SyncConfig | None = None, client: AlloyClient | None = None, on_page: PageCallback | None = None
) -> SyncPlan:
    """What a sync would change now, without changing or recording anything (``sync_alloy --dry-run``).

    Takes no lock. Raises SyncConfigError and AlloyError directly. ``client`` overrides the one built
    from settings (tests, benchmarks); it is not closed here.
    """
    config = config or SyncConfig.from_settings()
    with _client_for(config, client, fail_fast=True) as alloy:  # a dry run is always run by hand
        plan = SyncPlan()
        _read_into(plan, alloy, config, on_page)
        return plan


def alloy_sync(
    *,
    trigger: str,
    allow_mass_removal: bool = False,
    config: SyncConfig | None = None,
    client: AlloyClient | None = None,
    on_page: PageCallback | None = None,
) -> SyncOutcome:
    """Run one sync and record it as a SyncRun, whatever its outcome.

    Raises SyncAlreadyRunning (recording nothing) if another sync holds the lease. ``client``
    overrides the one built from settings (tests, benchmarks); it is not closed here. Every other
    way out, an interrupt or a bug included, leaves the record finished and saying why.
    """
    lease = SyncLease()
    run = sync_run_start(trigger=trigger, lease=lease)
    keeper = LeaseKeeper(lease)
    keeper.start()
    try:
        return _sync_holding_lease(_Sync(run, keeper, allow_mass_removal, on_page), config, client)
    finally:
        keeper.stop()
        try:
            lease.release()
        except DatabaseError:
            logger.warning("sync %s could not release its lease; it lapses in %g s", run.pk, SYNC_LEASE_TTL)


@dataclass
class _Sync:
    """One recorded sync under way: its record, its lease keeper, and what the caller asked."""

    run: SyncRun
    keeper: LeaseKeeper
    allow_mass_removal: bool
    on_page: PageCallback | None
    requests: int = 0

    def progress(self, pages: int, items: int) -> None:
        if self.keeper.lost:
            raise SyncLeaseLost(f"sync {self.run.pk} lost its lease to another sync while reading; it changed nothing")
        if self.on_page:
            self.on_page(pages, items)


def _sync_holding_lease(sync: _Sync, config: SyncConfig | None, client: AlloyClient | None) -> SyncOutcome:
    plan = SyncPlan()
    try:
        config = config or SyncConfig.from_settings()
        # By hand (sync_alloy, the demo): a host never reached fails at once, naming ALLOY_BASE_URL.
        by_hand = sync.run.trigger == SyncRun.Trigger.COMMAND
        with _client_for(config, client, fail_fast=by_hand) as alloy:
            try:
                status, message = _read_and_apply(sync, plan, alloy, config)
            finally:
                sync.requests = alloy.requests_made
    except (SyncConfigError, SyncLeaseLost, AlloyError) as exc:
        return SyncOutcome(plan, _finish(sync, plan, SyncRun.Status.FAILED, str(exc)))
    except DatabaseError as exc:
        # The database went away (a restart, a failover): the transaction rolled back, nothing was
        # written. Record that on a fresh connection if the database is back.
        connection.close()
        _finish(sync, plan, SyncRun.Status.FAILED, f"database error, nothing was changed: {type(exc).__name__}")
        raise
    except BaseException as exc:
        # A bug, an interrupt (Ctrl-C, a worker's shutdown): still recorded, then raised as it was.
        _finish(sync, plan, SyncRun.Status.FAILED, f"stopped by {type(exc).__name__}: {exc}")
        raise
    return SyncOutcome(plan, _finish(sync, plan, status, message))


def _read_and_apply(sync: _Sync, plan: SyncPlan, alloy: AlloyClient, config: SyncConfig) -> tuple[str, str]:
    _read_into(plan, alloy, config, sync.progress)
    sync.keeper.stop()  # the apply below renews the lease itself, in its transaction
    if plan.removes_too_many(config.max_removal_fraction) and not sync.allow_mass_removal:
        return SyncRun.Status.REFUSED, _refusal(plan, config)
    with transaction.atomic():
        if not sync.keeper.lease.take():
            raise SyncLeaseLost(f"sync {sync.run.pk} lost its lease to another sync before writing; it changed nothing")
        outcome = jobs_apply_changes_or_bisect(plan.changes)
        _record_refusals(plan, outcome)
        sync_plan_settle(plan, outcome)
    return SyncRun.Status.SUCCEEDED, "; ".join(plan.notes)


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


def _read_into(plan: SyncPlan, client: AlloyClient, config: SyncConfig, on_page: PageCallback | None) -> None:
    sync_plan_fill(plan, client.iter_items(config.query, on_page=on_page), _states(), config.item_rules)
    sync_plan_check_attributes(plan, config.item_rules, config.query.design_code)
    if plan.changes.remove:
        sync_plan_confirm_removals(plan, client.iter_items(config.query))


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
    return sync_run_finish(sync.run, plan, requests=sync.requests, status=status, message=message)
