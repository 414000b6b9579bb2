"""Admin pages benchmark: the dashboard and a job's page with many jobs and runs on PostgreSQL.

Fills a scratch database with SQL (``_bulk_data.fill``: minutes, not hours, for millions of rows), then
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

from _bulk_data import fill  # noqa: E402 - bench/, on the path as this script's folder
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import DatabaseError, connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from scheduler.models import Job, JobRun, ScheduleState  # noqa: E402

AIM_MS = 200.0
SIZES = {"full": (100_000, 5_000_000), "ci": (2_000, 50_000)}
PREFIX = "adminbench"


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
