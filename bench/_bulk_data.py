"""Many jobs and runs in a scratch PostgreSQL database, fast: the admin pages and API benchmarks' fill.

SQL ``generate_series`` rather than the ORM: 100,000 jobs and 5,000,000 runs take minutes, not hours.
One template job is made by the product's own service (``job_create``: periodic task, crontab,
schedule state), then copied row by row in SQL. Call ``fill`` after ``django.setup()``, on a database
that holds no jobs yet.

The history: each job runs about daily, the newest run now (so the last 48 hours hold about two runs a
job, and 5,000,000 runs go back 50 days; never more than the default 90 days' retention); 1 in 20 runs
failed; 1 job in 100 is failing now; jobs fall due over the next 48 hours; one busy job (1/25 of all
runs, a minute apart) was paused ``BUSY_PAUSED_DAYS`` ago. ``alloy_every`` and ``removed_every`` make
some jobs come from Alloy or be removed there (the API's filters); both off, the admin benchmark's data.
"""

from __future__ import annotations

import time

from django.db import connection
from django.db.models import Model
from django_celery_beat.models import PeriodicTask

from scheduler.jobspec import job_spec_build
from scheduler.models import Job, JobRun
from scheduler.services import job_create

# Runs inserted per statement: a few seconds each, so progress shows and no statement runs for minutes.
RUN_CHUNK = 1_000_000
RETENTION_DAYS = 90
DAY = 86400.0
PREFIX = "bench"
# One job, paused this many days ago, ran every minute before: 1/25 of all runs (200,000 at full size).
BUSY_PAUSED_DAYS = 60
BUSY_SHARE = 25


def insert_copies(model: type[Model], template_pk: int, overrides: dict[str, str], source: str) -> int:
    """INSERT one row of ``model`` per row of ``source`` (SQL yielding rows), copying the template row
    ``t`` except for ``overrides`` (column: SQL expression). Returns the rows inserted."""
    columns = [str(field.column) for field in model._meta.concrete_fields if not field.primary_key]
    values = ", ".join(overrides.get(column, f't."{column}"') for column in columns)
    table = model._meta.db_table
    column_list = ", ".join(f'"{column}"' for column in columns)
    # Table and column names from the models, expressions from this file: nothing from outside.
    sql = f'INSERT INTO "{table}" ({column_list}) SELECT {values} FROM "{table}" t CROSS JOIN {source} WHERE t.id = %s'  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [template_pk])
        return int(cursor.rowcount)


def fill(jobs: int, runs: int, *, alloy_every: int = 0, removed_every: int = 0) -> int:
    """``jobs`` jobs, their schedules and about ``runs`` runs (plus the busy job's); returns the id of a
    failing job with runs (the first job if none fails). Every ``alloy_every``-th job comes from Alloy (0: none), every
    ``removed_every``-th was removed there (0: none). Prints progress; ANALYZEs at the end."""
    started = time.perf_counter()
    spec = job_spec_build(
        name="template", cron="30 2 * * *", timezone="Europe/London", steps='examples.echo {"message": "bench"}'
    )
    template = job_create(spec=spec, source=Job.Source.LOCAL, external_id="")
    assert template.periodic_task is not None
    task_pk = template.periodic_task.pk
    series = f"generate_series(1, {jobs}) g"
    insert_copies(PeriodicTask, task_pk, {"name": f"'{PREFIX} ' || g"}, series)
    _insert_jobs(template.pk, alloy_every, removed_every)
    with connection.cursor() as cursor:
        # Due over the next 48 hours: half of them within the dashboard's 24.
        cursor.execute(
            'INSERT INTO "scheduler_schedulestate" (periodic_task_id, next_due_at, task_changed_at) '
            "SELECT pt.id, now() + (pt.id % 2880) * interval '1 minute', pt.date_changed "
            "FROM django_celery_beat_periodictask pt ON CONFLICT (periodic_task_id) DO NOTHING"
        )
        cursor.execute("SELECT min(id), count(*) FROM scheduler_job WHERE name LIKE %s", [f"{PREFIX} job %"])
        first_job, job_count = cursor.fetchone()
    print(f"  {job_count} jobs in {time.perf_counter() - started:.1f} s", flush=True)
    # Seconds between runs: each job about daily, all of them within the default retention.
    spacing = min(DAY / jobs, RETENTION_DAYS * DAY / runs)
    for start in range(0, runs, RUN_CHUNK):
        end = min(runs, start + RUN_CHUNK)
        with connection.cursor() as cursor:
            # Run g of job (g mod jobs), created g * spacing seconds ago; 1 in 20 failed, the newest
            # few (one per job) running; durations 1 to 300 s.
            cursor.execute(
                "INSERT INTO scheduler_jobrun (job_id, trigger, status, created_at, started_at, finished_at, "
                "heartbeat_at, worker, error, due_at, requested_by_id) "
                "SELECT %s + g %% %s, 'schedule', s.status, s.created, s.created + interval '1 second', "
                "CASE WHEN s.status = 'running' THEN NULL "
                "ELSE s.created + (1 + g %% 300) * interval '1 second' END, NULL, 'bench:1', "
                "CASE WHEN s.status = 'failed' THEN 'ValueError: bench failure ' || g ELSE '' END, NULL, NULL "
                "FROM generate_series(%s, %s) g, LATERAL (SELECT "
                "CASE WHEN g < %s THEN 'running' WHEN g %% 20 = 0 THEN 'failed' ELSE 'succeeded' END AS status, "
                "now() - g * %s * interval '1 second' AS created) s",
                [first_job, job_count, start, end - 1, min(job_count, 20), spacing],
            )
        print(f"  {end} runs in {time.perf_counter() - started:.1f} s", flush=True)
    busy = _add_busy_paused_job(first_job + job_count - 1, max(1, runs // BUSY_SHARE))
    print(f"  {busy} more runs for one busy job paused {BUSY_PAUSED_DAYS} days ago", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute(
            "SELECT j.id FROM scheduler_job j WHERE j.failure_streak > 0 "
            "AND EXISTS (SELECT 1 FROM scheduler_jobrun r WHERE r.job_id = j.id) ORDER BY j.id LIMIT 1"
        )
        row = cursor.fetchone()
    print(f"  filled and analysed in {time.perf_counter() - started:.1f} s", flush=True)
    return int(row[0] if row else first_job)  # under 100 jobs none fails


def _add_busy_paused_job(job_id: int, count: int) -> int:
    """``count`` runs a minute apart for ``job_id``, the newest ``BUSY_PAUSED_DAYS`` days old, and the job paused.

    A planner trap: with many runs of the job but none recent, "its newest runs" may be read by walking
    the runs' created_at index backward through everyone else's runs (1.2 s at full size).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scheduler_jobrun "
            "(job_id, trigger, status, created_at, started_at, finished_at, worker, error) "
            "SELECT %s, 'schedule', 'succeeded', c, c, c + interval '2 seconds', 'bench:1', '' "
            "FROM (SELECT now() - %s * interval '1 day' - g * interval '1 minute' AS c "
            "FROM generate_series(1, %s) g) s",
            [job_id, BUSY_PAUSED_DAYS, count],
        )
        cursor.execute(
            "UPDATE django_celery_beat_periodictask SET enabled = false "
            "WHERE id = (SELECT periodic_task_id FROM scheduler_job WHERE id = %s)",
            [job_id],
        )
        paused = cursor.rowcount
        # As job_pause does: the task's box for beat, paused_at for the job's state (/metrics' index).
        cursor.execute("UPDATE scheduler_job SET paused_at = now() WHERE id = %s", [job_id])
        return int(paused and count)


def _insert_jobs(template_pk: int, alloy_every: int, removed_every: int) -> int:
    # Overrides are SQL run with parameters: a literal % is written %%. The periodic task's id stands
    # in for the job's own, not known before the insert.
    alloy = f"pt.id %% {alloy_every} = 0" if alloy_every else "false"
    removed = f"pt.id %% {removed_every} = 1" if removed_every else "false"
    return insert_copies(
        Job,
        template_pk,
        {
            "name": f"'{PREFIX} job ' || substr(pt.name, {len(PREFIX) + 2})",
            "periodic_task_id": "pt.id",
            # One job in a hundred failing now, for one to seven runs.
            "failure_streak": "CASE WHEN pt.id %% 100 = 0 THEN pt.id %% 7 + 1 ELSE 0 END",
            "source": f"CASE WHEN {alloy} THEN 'alloy' ELSE 'local' END",
            "external_id": f"CASE WHEN {alloy} THEN 'item' || pt.id ELSE '' END",
            "removed_at": f"CASE WHEN {removed} THEN now() - (pt.id %% 30) * interval '1 day' ELSE NULL END",
        },
        f"(SELECT id, name FROM django_celery_beat_periodictask WHERE name LIKE '{PREFIX} %%') pt",  # noqa: S608
    )


def metric_counters_fill() -> int:
    """The counter rows ``/metrics`` reads on a busy deployment: every job source, trigger and outcome,
    every histogram bucket of run duration and lag, 30 Alloy endpoint and status pairs. Their number
    depends on the labels, not on runs. Returns the series written."""
    from scheduler.metrics import (
        DURATION_BUCKETS,
        JOB_RUN_DURATION,
        JOB_RUN_LAG,
        JOB_RUNS,
        LAG_BUCKETS,
        CounterAdd,
        counters_add,
        labels_text,
        observation,
    )

    counts: list[CounterAdd] = []
    for source in Job.Source.values:
        for trigger in JobRun.Trigger.values:
            for outcome in ("succeeded", "failed", "skipped"):
                labels = labels_text({"source": source, "trigger": trigger, "outcome": outcome})
                counts.append(CounterAdd(JOB_RUNS, labels, 1000))
        for seconds in (*DURATION_BUCKETS, 10_000):
            counts.append(observation(JOB_RUN_DURATION, DURATION_BUCKETS, {"source": source}, seconds))
        for seconds in (*LAG_BUCKETS, 10_000):
            counts.append(observation(JOB_RUN_LAG, LAG_BUCKETS, {"source": source}, seconds))
    for n in range(30):
        status = ("200", "429", "503", "error", "404", "401")[n % 6]
        labels = labels_text({"endpoint": f"/api/e{n // 6}", "status": status})
        counts.append(CounterAdd("alloysync_alloy_requests_total", labels, 50))
    counters_add(counts)
    return len(counts)
