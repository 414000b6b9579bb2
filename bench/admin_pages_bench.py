"""Admin pages benchmark: the dashboard and a job's page with many jobs and runs on PostgreSQL.

Fills a scratch database with SQL (generate_series: minutes, not hours, for millions of rows), then
asks for each page several times as a logged-in superuser through Django's test client (the whole
stack but the network: middleware, session, admin, templates). Prints median and p95 milliseconds,
the queries per page, and the ratio against the 200 ms aim.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync \\
        python bench/admin_pages_bench.py [--size full|ci] [--jobs N] [--runs N] [--requests 20] [--explain]

``--size full`` (the default) is the issue's 100,000 jobs and 5,000,000 runs; ``--size ci`` is 2,000
and 50,000. ``--jobs`` and ``--runs`` override either. Each job runs about daily, the newest run now
(so the last 48 hours hold about two runs a job, and 5,000,000 runs go back 50 days; never more than
the default 90 days' retention); 1 in 20 runs failed; 1 job in 100 is failing now; jobs fall due over the next 48 hours.
Runs in a throwaway database (``<name>_adminbench``) that it creates and drops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

import logging  # noqa: E402

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import DatabaseError, connection  # noqa: E402
from django.db.models import Model  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django_celery_beat.models import PeriodicTask  # noqa: E402

from scheduler.jobspec import job_spec_build  # noqa: E402
from scheduler.models import Job, JobRun, ScheduleState  # noqa: E402
from scheduler.services import job_create  # noqa: E402

AIM_MS = 200.0
SIZES = {"full": (100_000, 5_000_000), "ci": (2_000, 50_000)}
# Runs inserted per statement: a few seconds each, so progress shows and no statement runs for minutes.
RUN_CHUNK = 1_000_000
RETENTION_DAYS = 90
DAY = 86400.0
PREFIX = "adminbench"
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


def fill(jobs: int, runs: int) -> int:
    """Jobs, their schedules and runs; returns the id of a failing job with runs (the page measured)."""
    started = time.perf_counter()
    spec = job_spec_build(
        name="template", cron="30 2 * * *", timezone="Europe/London", steps='examples.echo {"message": "bench"}'
    )
    template = job_create(spec=spec, source=Job.Source.LOCAL, external_id="")
    assert template.periodic_task is not None
    task_pk = template.periodic_task.pk
    series = f"generate_series(1, {jobs}) g"
    insert_copies(PeriodicTask, task_pk, {"name": f"'{PREFIX} ' || g"}, series)
    _insert_jobs(template.pk)
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
        (page_job,) = cursor.fetchone()
    print(f"  filled and analysed in {time.perf_counter() - started:.1f} s", flush=True)
    return int(page_job)


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
        return int(cursor.rowcount and count)


def _insert_jobs(template_pk: int) -> int:
    # Overrides are SQL run with parameters: a literal % is written %%.
    return insert_copies(
        Job,
        template_pk,
        {
            "name": f"'{PREFIX} job ' || substr(pt.name, {len(PREFIX) + 2})",
            "periodic_task_id": "pt.id",
            # One job in a hundred failing now, for one to seven runs.
            "failure_streak": "CASE WHEN pt.id %% 100 = 0 THEN pt.id %% 7 + 1 ELSE 0 END",
        },
        f"(SELECT id, name FROM django_celery_beat_periodictask WHERE name LIKE '{PREFIX} %%') pt",  # noqa: S608
    )


class QueryLog:
    """Records the SQL a request runs. An execute wrapper, not CaptureQueriesContext: with
    CONN_MAX_AGE 0 (the project's setting) a request opens and closes its own connection, which
    the latter does not follow."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.sql.append(sql if params is None else sql % tuple(_literal(p) for p in params))
        return execute(sql, params, many, context)


def _literal(value: Any) -> str:
    # Good enough to EXPLAIN the bench's own queries: numbers, times and short strings.
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def measure(client: Client, url: str, requests: int, explain: bool) -> tuple[list[float], int]:
    """Milliseconds for each of ``requests`` GETs (after one warm-up), and the queries one makes."""
    log = QueryLog()
    with connection.execute_wrapper(log):
        response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    if explain:
        for sql in log.sql:
            with connection.cursor() as cursor:
                try:
                    cursor.execute("EXPLAIN ANALYZE " + sql)
                    plan = "\n      ".join(row[0] for row in cursor.fetchall())
                except DatabaseError as exc:
                    plan = f"(not explained: {type(exc).__name__})"
            print(f"    {sql[:300]}\n      {plan}")
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return times, len(log.sql)


def report(name: str, times: list[float], queries: int) -> bool:
    median = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    verdict = "met" if p95 < AIM_MS else "MISSED"
    print(
        f"{name:<20} median {median:7.1f} ms  p95 {p95:7.1f} ms  {queries:3d} queries  "
        f"p95 / {AIM_MS:.0f} ms aim = {p95 / AIM_MS:.2f} ({verdict})"
    )
    return p95 < AIM_MS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="full", help="full: 100,000 / 5,000,000; ci: 2,000 / 50,000"
    )
    parser.add_argument("--jobs", type=int, help="jobs (overrides --size)")
    parser.add_argument("--runs", type=int, help="runs (overrides --size)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--keep", action="store_true", help="keep the filled database, and reuse one kept before")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each page's queries")
    args = parser.parse_args()
    jobs = args.jobs or SIZES[args.size][0]
    runs = args.runs or SIZES[args.size][1]
    if connection.vendor != "postgresql":
        raise SystemExit("needs PostgreSQL: set DATABASE_URL=postgres://...")
    logging.disable(logging.WARNING)
    settings.DEBUG = False
    setup_test_environment()  # the test client's ALLOWED_HOSTS and template capture, as in tests
    test_settings = settings.DATABASES["default"].setdefault("TEST", {})
    test_settings["NAME"] = f"{settings.DATABASES['default']['NAME']}_{PREFIX}"
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=not args.keep, keepdb=args.keep, serialize=False
    )
    try:
        if args.keep and Job.objects.exists():
            print("Reusing the kept database (--keep)", flush=True)
            job_id = Job.objects.filter(failure_streak__gt=0).order_by("pk").values_list("pk", flat=True)[0]
        else:
            print(f"Filling {jobs} jobs and {runs} runs...", flush=True)
            job_id = fill(jobs, runs)
        user = get_user_model().objects.get_or_create(
            username="bench", defaults={"is_staff": True, "is_superuser": True}
        )[0]
        client = Client()
        client.force_login(user)
        busy_job = Job.objects.order_by("-pk").values_list("pk", flat=True)[0]
        pages = {
            "dashboard": "/admin/dashboard/",
            "job page": f"/admin/scheduler/job/{job_id}/change/",
            "paused busy job page": f"/admin/scheduler/job/{busy_job}/change/",
        }
        print(f"\n{jobs} jobs, {runs} runs, {args.requests} requests a page (after one warm-up):")
        met = [report(name, *measure(client, url, args.requests, args.explain)) for name, url in pages.items()]
        counts = (Job.objects.count(), JobRun.objects.count(), ScheduleState.objects.count())
        print("counts: {} jobs, {} runs, {} schedule states".format(*counts))
    finally:
        if args.keep:
            connection.close()
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    if not all(met):
        print("aim missed: see above")


if __name__ == "__main__":
    main()
