"""Retention: run history past its age is deleted in small batches, each its own short transaction.

``history_prune`` runs every registered part in turn: this app's job runs (``JOB_RUN_RETENTION_DAYS``,
with their steps and the alerts already sent about them) and whatever other apps add with
``register_pruner`` from ``AppConfig.ready`` (alloysync adds its sync records). The daily beat entry
``scheduler.prune_history`` and ``manage.py prune_history`` both call it.

Why batches: one ``DELETE ... WHERE created_at < cutoff`` over millions of rows holds every deleted
row's lock, and bloats the WAL, until it ends; workers recording runs meanwhile would wait on any row
it touched. A batch deletes at most ``BATCH_SIZE`` rows by primary key and commits: the locks taken
are row locks (plus the ordinary ROW EXCLUSIVE table lock that any INSERT also takes), held for the
batch's tenth of a second or so. Batches are found by walking the age index from the oldest row.

One prune at a time: each batch renews the ``prune-history`` lease inside its transaction, so a
second prune (started by hand while beat's is running) finds the lease held and stops at once; should a
stalled prune's lease lapse and another take over, the row lock on the lease serialises their
batches instead of letting them race for the same rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from scheduler.alert_channels import ALERT_MAX_ATTEMPTS, alerts_pending
from scheduler.leases import lease_hold, lease_holder, lease_release
from scheduler.models import Alert, JobRun, StepRun

#: The lease one prune holds while it deletes.
PRUNE_LEASE = "prune-history"
#: Seconds the lease lasts unless renewed; every batch renews it, and a batch takes well under a second.
PRUNE_LEASE_TTL = 300.0
#: Rows deleted per transaction: big enough that per-statement costs fade (a batch takes 60-170 ms on
#: PostgreSQL, steps and foreign-key checks included; bigger batches were no faster), small enough
#: that the row locks it holds are released at once.
BATCH_SIZE = 2000
#: The largest batch allowed: its transaction stays well under a second, and its ids fit SQLite's
#: limit on placeholders (32,766).
MAX_BATCH_SIZE = 10_000
#: Each job keeps this many of its latest runs, whatever their age.
KEEP_LATEST_RUNS = 20
#: Runs not yet over are never deleted, however old (a worker may still record them).
ACTIVE_RUN_STATUSES = (JobRun.Status.QUEUED, JobRun.Status.RUNNING)


class PruneAlreadyRunning(Exception):
    """Another prune holds the ``prune-history`` lease."""


class PruneLeaseLost(Exception):
    """This prune's lease lapsed and another prune took it; this one stopped between batches."""


@dataclass
class PruneContext:
    """What a part needs to prune: the time "now" is, the batch size, and whether to write at all."""

    now: datetime
    dry_run: bool = False
    batch_size: int = BATCH_SIZE
    holder: str = field(default_factory=lease_holder)


@dataclass
class PruneOutcome:
    """What one part removed (or would remove, on a dry run).

    ``removed`` counts rows by what they are (``{"runs": 1000, "steps": 2000, "alerts": 3}``);
    ``cutoff`` is None when the part's setting is 0 (keep for ever) and nothing was looked at.
    """

    part: str
    setting: str
    days: int
    cutoff: datetime | None
    removed: dict[str, int]
    seconds: float = 0.0

    def describe(self, *, dry_run: bool = False) -> str:
        """One line for an operator, e.g. ``job runs older than 90 days (before 2026-09-01 02:00 UTC):
        removed 1,000 runs, 2,000 steps, 3 alerts in 0.4 s (2,500 runs/s)``."""
        if self.cutoff is None:
            return f"{self.part}: {self.setting} is 0, keeping everything"
        counts = ", ".join(f"{count:,} {name}" for name, count in self.removed.items())
        verb = "would remove" if dry_run else "removed"
        line = f"{self.part} older than {self.days} days (before {self.cutoff:%Y-%m-%d %H:%M} UTC): {verb} {counts}"
        first, rows = next(iter(self.removed.items()))
        if not dry_run and rows and self.seconds > 0:
            line += f" in {self.seconds:.1f} s ({rows / self.seconds:,.0f} {first}/s)"
        return line


Pruner = Callable[[PruneContext], PruneOutcome]
_pruners: dict[str, Pruner] = {}


def register_pruner(name: str, pruner: Pruner) -> None:
    """Add a part to every prune, run after this app's job runs; apps call this from ``AppConfig.ready``."""
    _pruners[name] = pruner


def history_prune(
    *, dry_run: bool = False, batch_size: int = BATCH_SIZE, now: datetime | None = None
) -> list[PruneOutcome]:
    """Prune every registered part; one outcome per part, job runs first.

    A dry run counts what would go and writes nothing (it takes no lease either). Raises
    PruneAlreadyRunning if another prune holds the lease, PruneLeaseLost if it is taken from this one
    midway (what was deleted until then stays deleted: every batch is whole).
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"the batch size must be from 1 to {MAX_BATCH_SIZE:,}, not {batch_size:,}")
    context = PruneContext(now=now or timezone.now(), dry_run=dry_run, batch_size=batch_size)
    if not dry_run and not lease_hold(name=PRUNE_LEASE, holder=context.holder, ttl=PRUNE_LEASE_TTL):
        raise PruneAlreadyRunning("another prune_history is running (it holds the prune-history lease); nothing done")
    try:
        return [job_runs_prune(context), *(pruner(context) for pruner in _pruners.values())]
    finally:
        if not dry_run:
            lease_release(name=PRUNE_LEASE, holder=context.holder)


def job_runs_prune(context: PruneContext) -> PruneOutcome:
    """Delete runs created more than JOB_RUN_RETENTION_DAYS ago, with their steps, except each job's
    latest ``KEEP_LATEST_RUNS`` runs, its last failed run, and runs still queued or running.

    Alerts older than the same cutoff go too once ``alerts_settled``. An alert kept while its run
    goes loses its link to the run (``Alert.run`` is SET_NULL).
    """
    days = settings.JOB_RUN_RETENTION_DAYS
    outcome = PruneOutcome("job runs", "JOB_RUN_RETENTION_DAYS", days, None, {"runs": 0, "steps": 0, "alerts": 0})
    if days == 0:
        return outcome
    started = time.monotonic()
    outcome.cutoff = cutoff = context.now - timedelta(days=days)
    kept = job_runs_kept(cutoff)
    removed = rows_prune(
        context, JobRun.objects.all(), "created_at", cutoff, kept=kept, keep_statuses=ACTIVE_RUN_STATUSES
    )
    removed += rows_prune(context, Alert.objects.filter(alerts_settled()), "created_at", cutoff)
    outcome.removed = {"runs": removed[JobRun], "steps": removed[StepRun], "alerts": removed[Alert]}
    outcome.seconds = time.monotonic() - started
    return outcome


def alerts_settled() -> Q:
    """Alerts nothing will send any more: every configured channel has them, or the sweep gave up
    (``ALERT_MAX_ATTEMPTS``). One still owed to a channel stays, whatever its age, until it is sent
    or given up: pruning it would lose a send silently."""
    return ~alerts_pending() | Q(attempts__gte=ALERT_MAX_ATTEMPTS)


def job_runs_kept(cutoff: datetime) -> set[int]:
    """Ids of runs older than ``cutoff`` that stay all the same: each job's latest runs and last failure.

    One pass of ROW_NUMBER() OVER (PARTITION BY job ...) over the table, the same SQL on PostgreSQL
    and SQLite (about 1 s a million runs on PostgreSQL, in the order the (job, -created_at) index
    gives). The age test sits outside the window, which must rank every run. Written by hand because
    the ORM would put it inside, and its ``pk IN (window)`` form got a plan that re-read the ranked
    runs once per run (a minute for 400,000 runs). The set holds only what jobs keep past the cutoff:
    at most 21 ids a job, none for a job whose latest 20 runs are all recent.
    """
    quote = connection.ops.quote_name
    table = quote(JobRun._meta.db_table)
    job, created, pk, status = (quote(_column(JobRun, name)) for name in ("job", "created_at", "id", "status"))
    ranked = (
        f"SELECT {pk} AS id, {created} AS created, ROW_NUMBER() OVER "  # noqa: S608 - names from the model
        f"(PARTITION BY {job} ORDER BY {created} DESC, {pk} DESC) AS newest FROM {table}"
    )
    sql = (
        f"SELECT id FROM ({ranked}) AS latest WHERE newest <= %s AND created < %s "  # noqa: S608
        f"UNION SELECT id FROM ({ranked} WHERE {status} = %s) AS failed WHERE newest = 1 AND created < %s"
    )
    before = connection.ops.adapt_datetimefield_value(cutoff)
    with connection.cursor() as cursor:
        cursor.execute(sql, [KEEP_LATEST_RUNS, before, JobRun.Status.FAILED, before])
        return {row[0] for row in cursor.fetchall()}


def rows_prune(
    context: PruneContext,
    candidates: QuerySet[models.Model],
    age_field: str,
    cutoff: datetime,
    *,
    kept: Set[int] = frozenset(),
    keep_statuses: Sequence[str] = (),
) -> Counter[type[models.Model]]:
    """Delete ``candidates`` whose ``age_field`` is before ``cutoff``, batch by batch, oldest first;
    rows that depend on them go in the same batch (CASCADE) or let go of them (SET_NULL).

    ``kept`` ids stay, and so do rows whose ``status`` is in ``keep_statuses`` (checked again by the
    DELETE itself, so a row that changed status meanwhile is spared). Returns rows removed (or, on a
    dry run, that would be) by model. Raises PruneLeaseLost if another prune took the lease.
    """
    model = candidates.model
    counts: Counter[type[models.Model]] = Counter()
    for page in _pages(candidates, age_field, cutoff, context.batch_size, with_status=bool(keep_statuses)):
        ids = [row[1] for row in page if row[1] not in kept and (not keep_statuses or row[2] not in keep_statuses)]
        if not ids:
            continue
        if context.dry_run:
            counts += _rows_count(model, ids, keep_statuses)
            continue
        with transaction.atomic():
            # Inside the transaction: the lease row's lock serialises batches should two prunes overlap.
            if not lease_hold(name=PRUNE_LEASE, holder=context.holder, ttl=PRUNE_LEASE_TTL):
                raise PruneLeaseLost("another prune took the prune-history lease; this one stopped")
            counts += rows_delete(model, ids, keep_statuses=keep_statuses)
    return counts


def _pages(
    candidates: QuerySet[models.Model], age_field: str, cutoff: datetime, size: int, *, with_status: bool
) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of ``(age, pk[, status])`` before ``cutoff``, oldest first, found by walking the age index.

    Each page starts where the last ended (keyset, not OFFSET), bounded below by an indexable
    ``age >= last age``: a query from the start of the range would wade again through the index
    entries of every row already deleted (they stay until VACUUM).
    """
    columns = [age_field, "pk", *(["status"] if with_status else [])]
    older = candidates.filter(**{f"{age_field}__lt": cutoff}).order_by(age_field, "pk")
    after: tuple[Any, Any] | None = None
    while True:
        page_query = older
        if after is not None:
            page_query = older.filter(**{f"{age_field}__gte": after[0]}).exclude(
                **{age_field: after[0], "pk__lte": after[1]}
            )
        page = list(page_query.values_list(*columns)[:size])
        if not page:
            return
        yield page
        after = (page[-1][0], page[-1][1])


def rows_delete(
    model: type[models.Model], ids: Sequence[int], *, keep_statuses: Sequence[str] = ()
) -> Counter[type[models.Model]]:
    """Delete these rows of ``model`` (not those whose status is in ``keep_statuses``) and what
    depends on them, in the caller's transaction, with one statement per table; rows by model.

    Plain SQL rather than QuerySet.delete(), which loads every row and every dependent row into
    Python first. Dependents are found from the models' own relations: a CASCADE relation has its
    rows deleted, a SET_NULL one its column cleared; any other on_delete raises TypeError.
    Foreign keys are checked at commit (Django makes them deferrable), so the order does not matter.
    """
    quote = connection.ops.quote_name
    condition, params = _among(quote(_column(model, "pk")), ids)
    if keep_statuses:
        condition += f" AND {quote('status')} NOT IN ({', '.join(['%s'] * len(keep_statuses))})"
        params += list(keep_statuses)
    deleted = _delete_returning(model, condition, params)
    counts: Counter[type[models.Model]] = Counter({model: len(deleted)})
    if deleted:
        for relation in _dependents(model):
            counts += _dependents_release(relation, deleted)
    return counts


def _among(column: str, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """``column`` is one of ``ids``, as SQL and its parameters.

    One array parameter on PostgreSQL: 2,000 placeholders cost psycopg more time to fill in than the
    database takes to delete the rows. SQLite has no arrays; its limit on placeholders is 32,766.
    """
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _delete_returning(model: type[models.Model], condition: str, params: list[Any]) -> list[int]:
    quote = connection.ops.quote_name
    pk = quote(_column(model, "pk"))
    sql = f"DELETE FROM {quote(model._meta.db_table)} WHERE {condition} RETURNING {pk}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _column(model: type[models.Model], name: str) -> str:
    """The database column of ``model``'s field ``name`` ("pk" for the primary key)."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{model.__name__}.{name} has no column")
    return column


def _dependents(model: type[models.Model]) -> list[models.ForeignObjectRel]:
    """Relations whose rows point at ``model``'s, hidden ones (``related_name="+"``) included, as
    Django's own delete finds them."""
    fields = model._meta.get_fields(include_hidden=True)
    return [f for f in fields if isinstance(f, models.ForeignObjectRel) and (f.one_to_many or f.one_to_one)]


def _dependents_release(relation: models.ForeignObjectRel, ids: Sequence[int]) -> Counter[type[models.Model]]:
    related = relation.related_model
    quote = connection.ops.quote_name
    table, column = quote(related._meta.db_table), quote(_column(related, relation.field.name))
    condition, params = _among(column, ids)
    if relation.on_delete is models.CASCADE:
        if not _dependents(related):
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE {condition}", params)  # noqa: S608
                return Counter({related: cursor.rowcount})
        deleted = _delete_returning(related, condition, params)  # their own dependents follow by id
        counts = Counter({related: len(deleted)})
        for relation_of_related in _dependents(related):
            counts += _dependents_release(relation_of_related, deleted) if deleted else Counter()
        return counts
    if relation.on_delete is models.SET_NULL:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET {column} = NULL WHERE {condition}", params)  # noqa: S608
        return Counter()
    raise TypeError(
        f"retention cannot delete {relation.model.__name__} rows: {related.__name__}.{relation.field.name} "
        f"is on_delete={getattr(relation.on_delete, '__name__', relation.on_delete)}"
    )


def _rows_count(
    model: type[models.Model], ids: Sequence[int], keep_statuses: Sequence[str]
) -> Counter[type[models.Model]]:
    """What ``rows_delete`` would remove, counted without writing."""
    going = model._default_manager.filter(pk__in=ids).exclude(
        **({"status__in": keep_statuses} if keep_statuses else {})
    )
    going_ids = list(going.values_list("pk", flat=True))
    counts: Counter[type[models.Model]] = Counter({model: len(going_ids)})
    for relation in _dependents(model):
        related = relation.related_model
        if going_ids and relation.on_delete is models.CASCADE:
            counts[related] += related._default_manager.filter(**{f"{relation.field.name}__in": going_ids}).count()
    return counts
