"""The job engine's metrics for ``/metrics``: counters kept in the database, and its collector.

Counters and histograms are rows of ``MetricCounter``: every process that ends a run adds to them
with one ``INSERT ... ON CONFLICT DO UPDATE`` (``counters_add``; on PostgreSQL the run path folds that
statement into the run's own start and end, ``run_record``), so every web process on every host
reads the same totals, and a restart loses none. A histogram's buckets are stored one row per bucket
an observation fell in (label ``le``, not cumulative); the collector adds them up.

Gauges are read at scrape time with a fixed number of indexed queries, whatever the number of jobs.

Metric names and labels are public: dashboards and alert rules (``deploy/``) use them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models.functions import Now
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from scheduler.models import Job, JobRun, Lease, MetricCounter

JOB_RUNS = "alloysync_job_runs_total"
JOB_RUN_DURATION = "alloysync_job_run_duration_seconds"
JOB_RUN_LAG = "alloysync_job_run_lag_seconds"
JOBS = "alloysync_jobs"
BEAT_LEADER = "alloysync_beat_leader"

#: Upper bounds (seconds) of the duration histogram's buckets; +Inf is added.
DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)
#: Upper bounds (seconds) of the due-to-start lag histogram's buckets; +Inf is added.
LAG_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

#: Job states of ``alloysync_jobs``, in the order of precedence: a job is counted in the first that fits.
JOB_STATES: tuple[str, ...] = ("removed", "invalid", "paused", "failing", "scheduled")

# The beat lease's name (scheduler.beat): a beat holding it unexpired is the one sending due jobs.
_BEAT_LEASE = "beat"
_INF = "+Inf"
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


@dataclass(frozen=True)
class CounterAdd:
    """An addition to one series: ``count`` events whose observed values add up to ``total`` (seconds)."""

    metric: str
    labels: str  # canonical: see ``labels_text``
    count: int = 1
    total: float = 0.0


def labels_text(labels: dict[str, str]) -> str:
    """The canonical text of a series' labels: ``name="value"`` pairs sorted by name, comma-joined,
    values escaped as in Prometheus' text format. Two processes writing one series write one row."""
    return ",".join(f'{name}="{_escape(str(labels[name]))}"' for name in sorted(labels))


def labels_parse(text: str) -> dict[str, str]:
    """The labels ``labels_text`` wrote; ``ValueError`` if ``text`` is not in that form."""
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL_RE.match(text, position)
        if match is None:
            raise ValueError(f"labels not in canonical form at character {position}: {text!r}")
        labels[match.group(1)] = _unescape(match.group(2))
        position = match.end()
    return labels


def observation(metric: str, bounds: Sequence[float], labels: dict[str, str], seconds: float) -> CounterAdd:
    """One observation of a histogram: a count in the one bucket it falls in (the smallest bound at
    or above it, else +Inf), its value in that bucket's total (so the series' _sum is all totals)."""
    seconds = max(0.0, seconds)  # clocks of two hosts may disagree by a little: never a negative time
    le = next((_bound_text(bound) for bound in bounds if seconds <= bound), _INF)
    return CounterAdd(metric, labels_text({**labels, "le": le}), 1, seconds)


def run_start_counts(*, source: str, trigger: str, started_at: datetime, due_at: datetime | None) -> list[CounterAdd]:
    """What a run's start adds: its lag from due time to start, for a scheduled run only."""
    if trigger != JobRun.Trigger.SCHEDULE or due_at is None:
        return []
    return [observation(JOB_RUN_LAG, LAG_BUCKETS, {"source": source}, (started_at - due_at).total_seconds())]


def run_end_counts(
    *, source: str, trigger: str, outcome: str, started_at: datetime | None, finished_at: datetime
) -> list[CounterAdd]:
    """What a run's end adds: one to its outcome (succeeded, failed or skipped) and, if it started,
    its duration."""
    counts = [CounterAdd(JOB_RUNS, labels_text({"source": source, "trigger": trigger, "outcome": outcome}))]
    if started_at is not None:
        seconds = (finished_at - started_at).total_seconds()
        counts.append(observation(JOB_RUN_DURATION, DURATION_BUCKETS, {"source": source}, seconds))
    return counts


def missed_run_counts(runs: Sequence[JobRun]) -> list[CounterAdd]:
    """What runs recorded skipped by beat (due while no beat ran, beyond the catch-up window) add: one
    to skipped each, by their jobs' sources (one query, only when beat records such runs)."""
    if not runs:
        return []
    sources = dict(Job.objects.filter(pk__in={run.job_id for run in runs}).values_list("pk", "source"))
    return [
        count
        for run in runs
        for count in run_end_counts(
            source=sources.get(run.job_id, Job.Source.LOCAL),
            trigger=run.trigger,
            outcome=JobRun.Status.SKIPPED,
            started_at=None,
            finished_at=run.finished_at or run.created_at,
        )
    ]


def merged(counts: Iterable[CounterAdd]) -> list[CounterAdd]:
    """``counts`` with one addition per series, sorted by (metric, labels): every multi-row upsert
    locks rows in that one order, so two of them cannot deadlock; and PostgreSQL refuses an upsert
    that touches one row twice."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for add in counts:
        total = sums[add.metric, add.labels]
        total[0] += add.count
        total[1] += add.total
    return [CounterAdd(metric, labels, int(n), s) for (metric, labels), (n, s) in sorted(sums.items())]


def counters_add(counts: Iterable[CounterAdd]) -> None:
    """Add ``counts`` to their series in the database, in one statement (PostgreSQL and SQLite).

    Atomic per statement: concurrent processes adding to one series lose nothing. Raises what the
    database raises; then nothing was added.
    """
    rows = merged(counts)
    if not rows:
        return
    sql, params = upsert_sql(rows, source=None)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def upsert_sql(rows: Sequence[CounterAdd], *, source: str | None) -> tuple[str, list[Any]]:
    """The ``INSERT ... ON CONFLICT DO UPDATE`` adding ``rows`` (from ``merged``), and its parameters.

    ``source``, for a data-modifying CTE on PostgreSQL, names a CTE of the same statement: a row is
    added once per row it returns, so none when it returned none (a run another process ended first).
    """
    quote = connection.ops.quote_name
    table = quote(MetricCounter._meta.db_table)
    columns = "metric, labels, count, total"
    params: list[Any] = [value for row in rows for value in (row.metric, row.labels, row.count, row.total)]
    if source is None:
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        head = f"INSERT INTO {table} ({columns}) VALUES {values}"  # noqa: S608 - names from the model
    else:
        # Typed placeholders: VALUES alone would read the numbers as text.
        values = ", ".join(["(%s::varchar, %s::varchar, %s::bigint, %s::double precision)"] * len(rows))
        # Names from the model and the caller's CTE, values as parameters.
        head = f"INSERT INTO {table} ({columns}) SELECT v.metric, v.labels, v.count, v.total "
        head += f"FROM (VALUES {values}) AS v ({columns}) CROSS JOIN {source} ORDER BY v.metric, v.labels"
    sql = (
        f"{head} ON CONFLICT (metric, labels) DO UPDATE SET "
        f"count = {table}.count + excluded.count, total = {table}.total + excluded.total"
    )
    return sql, params


def counters_read(metrics: Sequence[str]) -> dict[str, list[tuple[dict[str, str], int, float]]]:
    """The stored series of ``metrics``: for each, (labels, count, total) per row. One query."""
    series: dict[str, list[tuple[dict[str, str], int, float]]] = {name: [] for name in metrics}
    for metric, labels, count, total in MetricCounter.objects.filter(metric__in=metrics).values_list(
        "metric", "labels", "count", "total"
    ):
        series[metric].append((labels_parse(labels), int(count), float(total)))
    return series


def counter_family(
    name: str, documentation: str, label_names: Sequence[str], rows: Iterable[tuple[dict[str, str], int, float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=list(label_names))
    for labels, count, _ in sorted(rows, key=lambda row: sorted(row[0].items())):
        family.add_metric([labels.get(label, "") for label in label_names], count)
    return family


def histogram_family(
    name: str,
    documentation: str,
    label_names: Sequence[str],
    bounds: Sequence[float],
    rows: Iterable[tuple[dict[str, str], int, float]],
) -> HistogramMetricFamily:
    """A histogram from its stored buckets (one row per bucket observed), cumulated here; every bucket
    shown, those nothing fell in too, as Prometheus' histogram_quantile expects."""
    edges = [_bound_text(bound) for bound in bounds] + [_INF]
    per_series: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
    sums: dict[tuple[str, ...], float] = defaultdict(float)
    for labels, count, total in rows:
        key = tuple(labels.get(label, "") for label in label_names)
        le = labels.get("le", _INF)
        per_series[key][le] = per_series[key].get(le, 0) + count
        sums[key] += total
    family = HistogramMetricFamily(name, documentation, labels=list(label_names))
    for key in sorted(per_series):
        running, buckets = 0, []
        for edge in edges:
            running += per_series[key].get(edge, 0)
            buckets.append((edge, float(running)))
        family.add_metric(list(key), buckets, sum_value=sums[key])
    return family


# Each rare state is counted through its own partial index (job_removed, job_invalid, job_paused,
# job_failing: migration 0011), and "scheduled" is what is left of an index-only count of every job,
# so a scrape over 100,000 jobs reads a few index pages (about 20 ms under load) where one aggregate
# with a filter per state scanned every job and its task (200 to 300 ms). The conditions repeat the
# indexes' own predicates, or the planner cannot use them. Paused is paused_at, which job_pause and
# job_resume set with the task's enabled box (0012 filled it in for pauses made before it existed).
_JOB_STATE_SQL = """
SELECT
  (SELECT COUNT(*) FROM {job}) AS total,
  (SELECT COUNT(*) FROM {job} WHERE removed_at IS NOT NULL OR periodic_task_id IS NULL) AS removed,
  (SELECT COUNT(*) FROM {job} WHERE NOT (sync_error = '')
     AND removed_at IS NULL AND periodic_task_id IS NOT NULL) AS invalid,
  (SELECT COUNT(*) FROM {job} WHERE paused_at IS NOT NULL
     AND sync_error = '' AND removed_at IS NULL AND periodic_task_id IS NOT NULL) AS paused,
  (SELECT COUNT(*) FROM {job} WHERE failure_streak > 0 AND paused_at IS NULL
     AND sync_error = '' AND removed_at IS NULL AND periodic_task_id IS NOT NULL) AS failing
"""


def job_state_counts() -> dict[str, int]:
    """Jobs by state (``JOB_STATES``), each job once, by precedence: removed, invalid, paused,
    failing, else scheduled. One query, reading indexes only in proportion to the rare states."""
    with connection.cursor() as cursor:
        cursor.execute(_JOB_STATE_SQL.format(job=connection.ops.quote_name(Job._meta.db_table)))
        total, removed, invalid, paused, failing = (int(value or 0) for value in cursor.fetchone())
    scheduled = total - removed - invalid - paused - failing
    return dict(zip(JOB_STATES, (removed, invalid, paused, failing, scheduled), strict=True))


def beat_leader_held() -> bool:
    """Whether a beat holds the ``beat`` lease unexpired, by the database's clock. One query by key."""
    return Lease.objects.filter(name=_BEAT_LEASE, expires_at__gt=Now()).exists()


class SchedulerCollector(Collector):
    """Runs by source, trigger and outcome; run duration and due-to-start lag; jobs by state; whether
    a beat leads. Three queries a scrape, whatever the number of jobs and runs."""

    def collect(self) -> Iterator[Metric]:
        stored = counters_read([JOB_RUNS, JOB_RUN_DURATION, JOB_RUN_LAG])
        yield counter_family(
            JOB_RUNS,
            "Job runs ended, by job source, trigger and outcome (succeeded, failed; skipped: refused or overlapping).",
            ("source", "trigger", "outcome"),
            stored[JOB_RUNS],
        )
        yield histogram_family(
            JOB_RUN_DURATION,
            "Seconds from a run's start to its end, for runs that started.",
            ("source",),
            DURATION_BUCKETS,
            stored[JOB_RUN_DURATION],
        )
        yield histogram_family(
            JOB_RUN_LAG,
            "Seconds from a scheduled run's due time to its start.",
            ("source",),
            LAG_BUCKETS,
            stored[JOB_RUN_LAG],
        )
        jobs = GaugeMetricFamily(
            JOBS,
            "Jobs by state, each counted once: removed > invalid > paused > failing > scheduled.",
            labels=["state"],
        )
        for state, count in job_state_counts().items():
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            BEAT_LEADER, "1 while a beat holds the leader lease unexpired, else 0.", value=int(beat_leader_held())
        )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda match: "\n" if match.group(1) == "n" else match.group(1), value)


def _bound_text(bound: float) -> str:
    # As prometheus_client writes a bucket's bound (1 -> "1.0"), so stored rows read as it reads them.
    return repr(float(bound))
