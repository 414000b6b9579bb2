"""The sync: items marked as jobs in Alloy become scheduled jobs.

One sync reads every item (streamed page by page), compares each with the job it maps to by content,
and collects only the differences (``alloysync.plan``). Nothing is written until the read is complete: a failed or
partial read changes nothing. The differences are then written in bulk in one transaction, after
the mass-removal check. A sync that finds no differences writes no job or schedule at all, so beat
does not reload. Every sync, by hand or scheduled, leaves a ``SyncRun``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from alloysync.client import AlloyClient, AlloyError, ItemQuery
from alloysync.mapping import AttributeCodes
from alloysync.models import SyncRun
from alloysync.plan import ItemRules, SyncPlan, sync_plan_confirm_removals, sync_plan_fill
from scheduler.changes import jobs_apply_changes
from scheduler.leases import lease_hold, lease_holder, lease_release
from scheduler.models import Job, Lease
from scheduler.selectors import JobState, job_states_for_source

logger = logging.getLogger(__name__)

# One sync at a time: a lease, renewed while the sync reads, so a sync whose process died (or whose
# database restarted under it) stops blocking the next one after this long, not forever. Longer than
# one request can take with its retries (ALLOY_TIMEOUT plus a 120 s retry budget).
SYNC_LEASE = "alloy-sync"
SYNC_LEASE_TTL = 300.0

PageCallback = Callable[[int, int], None]


class SyncConfigError(Exception):
    """A required ALLOY_* setting is missing or wrong; the message names it."""


class SyncAlreadyRunning(Exception):
    """Another sync holds the lock."""


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
        api_key = settings.ALLOY_API_KEY
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
        if not 0 <= settings.ALLOY_MAX_REMOVAL_FRACTION <= 1:
            raise SyncConfigError(
                f"ALLOY_MAX_REMOVAL_FRACTION must be between 0 and 1, got {settings.ALLOY_MAX_REMOVAL_FRACTION}"
            )
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

    def client(self) -> AlloyClient:
        return AlloyClient(self.base_url, self.api_key, timeout=self.timeout, page_size=self.page_size)


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
    with _client_for(config, client) as alloy:
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
    overrides the one built from settings (tests, benchmarks); it is not closed here.
    """
    lease = _SyncLease()
    run = sync_run_start(trigger=trigger, lease=lease)
    try:
        return _sync_holding_lease(run, lease, allow_mass_removal, config, client, on_page)
    finally:
        try:
            lease.release()
        except DatabaseError:
            logger.warning("sync %s could not release its lease; it lapses in %g s", run.pk, SYNC_LEASE_TTL)


def _sync_holding_lease(
    run: SyncRun,
    lease: _SyncLease,
    allow_mass_removal: bool,
    config: SyncConfig | None,
    client: AlloyClient | None,
    on_page: PageCallback | None,
) -> SyncOutcome:
    plan = SyncPlan()
    try:
        config = config or SyncConfig.from_settings()
    except SyncConfigError as exc:
        return SyncOutcome(plan, _finish(run, plan, 0, SyncRun.Status.FAILED, str(exc)))

    def progress(pages: int, items: int) -> None:
        lease.keep()
        if on_page:
            on_page(pages, items)

    with _client_for(config, client) as alloy:
        try:
            _read_into(plan, alloy, config, progress)
            lease.keep()
            if plan.removes_too_many(config.max_removal_fraction) and not allow_mass_removal:
                refusal = _refusal(plan, config)
                return SyncOutcome(plan, _finish(run, plan, alloy.requests_made, SyncRun.Status.REFUSED, refusal))
            jobs_apply_changes(plan.changes)
        except AlloyError as exc:
            return SyncOutcome(plan, _finish(run, plan, alloy.requests_made, SyncRun.Status.FAILED, str(exc)))
        except DatabaseError as exc:
            # The database went away (a restart, a failover): the transaction rolled back, nothing was
            # written. Record that on a fresh connection if the database is back.
            connection.close()
            _finish(run, plan, alloy.requests_made, SyncRun.Status.FAILED, f"database error: {type(exc).__name__}")
            raise
        except BaseException as exc:
            _finish(run, plan, alloy.requests_made, SyncRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        return SyncOutcome(plan, _finish(run, plan, alloy.requests_made, SyncRun.Status.SUCCEEDED, ""))


def _read_into(plan: SyncPlan, client: AlloyClient, config: SyncConfig, on_page: PageCallback | None) -> None:
    sync_plan_fill(plan, client.iter_items(config.query, on_page=on_page), _states(), config.item_rules)
    if plan.changes.remove:
        sync_plan_confirm_removals(plan, client.iter_items(config.query))


def _client_for(config: SyncConfig, client: AlloyClient | None) -> AbstractContextManager[AlloyClient]:
    return nullcontext(client) if client is not None else config.client()


def _states() -> dict[str, JobState]:
    return job_states_for_source(Job.Source.ALLOY)


def _refusal(plan: SyncPlan, config: SyncConfig) -> str:
    return (
        f"refused: this sync would remove {len(plan.changes.remove)} of {plan.live_jobs} live jobs, more than "
        f"ALLOY_MAX_REMOVAL_FRACTION={config.max_removal_fraction:g}; nothing was changed. If Alloy really lost "
        "those items' job flag, run `manage.py sync_alloy --allow-mass-removal`."
    )


class _SyncLease:
    """The sync's hold on the ``alloy-sync`` lease, renewed as pages arrive."""

    def __init__(self) -> None:
        self.holder = lease_holder()
        self._renewed = 0.0

    def take(self) -> bool:
        taken = lease_hold(name=SYNC_LEASE, holder=self.holder, ttl=SYNC_LEASE_TTL)
        self._renewed = time.monotonic()
        return taken

    def keep(self) -> None:
        if time.monotonic() - self._renewed > SYNC_LEASE_TTL / 3:
            self.take()

    def release(self) -> None:
        lease_release(name=SYNC_LEASE, holder=self.holder)


def sync_run_start(*, trigger: str, lease: _SyncLease) -> SyncRun:
    """Take the sync lease and record a running SyncRun; raise SyncAlreadyRunning if another holds it."""
    if not lease.take():
        holder = Lease.objects.filter(name=SYNC_LEASE).values_list("holder", "acquired_at").first()
        since = f" ({holder[0]}, since {holder[1]:%Y-%m-%d %H:%M:%S} UTC)" if holder else ""
        raise SyncAlreadyRunning(f"another sync is running{since}; this one did nothing")
    now = timezone.now()
    # Whoever holds the lease is the only sync alive: one still marked running died on the way.
    SyncRun.objects.filter(status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.FAILED, finished_at=now, message="abandoned: the process running it stopped"
    )
    return SyncRun.objects.create(trigger=trigger, started_at=now, status=SyncRun.Status.RUNNING)


def _finish(run: SyncRun, plan: SyncPlan, requests: int, status: str, message: str) -> SyncRun:
    finished_at = timezone.now()
    run.status, run.finished_at, run.message, run.requests = status, finished_at, message, requests
    run.items_read, run.unchanged, run.errors = plan.items_read, plan.unchanged, plan.errors
    run.invalid = len(plan.errors)
    applied = status == SyncRun.Status.SUCCEEDED
    run.created = plan.created if applied else 0
    run.updated = plan.updated if applied else 0
    run.removed = len(plan.changes.remove) if applied else 0
    run.save()
    log = logger.info if applied else logger.warning
    seconds = (finished_at - run.started_at).total_seconds()  # run.duration, which is set once finished
    # LogRecord owns "created": the counts go out under names of their own.
    counted = ("items_read", "created", "updated", "unchanged", "removed", "invalid")
    counts = {f"sync_{name}": getattr(run, name) for name in counted}
    log(
        "sync %s %s in %.1f s: %s, %d requests%s",
        *(run.pk, status, seconds, run.summary(), requests, _colon(message)),
        extra={"sync_id": run.pk, "status": status, "seconds": seconds, "requests": requests, **counts},
    )
    return run


def _colon(message: str) -> str:
    return f": {message}" if message else ""
