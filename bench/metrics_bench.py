"""/metrics benchmark: a scrape with many jobs and runs on PostgreSQL.

Fills a scratch database as the admin pages benchmark does (``_bulk_data.fill``), adds the counter
rows a busy deployment has (every source, trigger and outcome; every histogram bucket; 30 Alloy
endpoint and status pairs), then GETs /metrics with the token through Django's test client. Prints
median and p95 milliseconds and the queries a scrape makes (a fixed number: none reads runs).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync \\
        python bench/metrics_bench.py [--jobs 100000] [--runs 5000000] [--requests 20]

Runs in a throwaway database (``<name>_metricsbench``) that it creates and drops.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from _bulk_data import fill  # noqa: E402 - bench/, on the path as this script's folder
from admin_pages_bench import QueryLog  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from config.env_secrets import Secret  # noqa: E402
from scheduler.metrics import (  # noqa: E402
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

AIM_MS = 100.0
TOKEN = "metrics-bench-token-0123456789abcdef"  # noqa: S105 - a throwaway database's


def busy_counters() -> None:
    counts: list[CounterAdd] = []
    for source in ("local", "alloy"):
        for trigger in ("schedule", "manual", "command", "alloy", "api"):
            for outcome in ("succeeded", "failed", "skipped"):
                counts.append(
                    CounterAdd(JOB_RUNS, labels_text({"source": source, "trigger": trigger, "outcome": outcome}), 1000)
                )
        for bound in (*DURATION_BUCKETS, 10_000):
            counts.append(observation(JOB_RUN_DURATION, DURATION_BUCKETS, {"source": source}, bound))
        for bound in (*LAG_BUCKETS, 10_000):
            counts.append(observation(JOB_RUN_LAG, LAG_BUCKETS, {"source": source}, bound))
    for n in range(30):
        status = ("200", "429", "503", "error", "404", "401")[n % 6]
        counts.append(
            CounterAdd(
                "alloysync_alloy_requests_total", labels_text({"endpoint": f"/api/e{n // 6}", "status": status}), 50
            )
        )
    counters_add(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("needs PostgreSQL: set DATABASE_URL=postgres://...")
    logging.disable(logging.WARNING)
    settings.DEBUG = False
    settings.METRICS_TOKEN = Secret(TOKEN)
    setup_test_environment()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"{settings.DATABASES['default']['NAME']}_metricsbench"
    )
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        print(f"Filling {args.jobs} jobs and {args.runs} runs...", flush=True)
        fill(args.jobs, args.runs, alloy_every=10, removed_every=50)
        busy_counters()
        client = Client(headers={"Authorization": f"Bearer {TOKEN}"})
        log = QueryLog()
        with connection.execute_wrapper(log):
            response = client.get("/metrics")
        assert response.status_code == 200, response.status_code
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            client.get("/metrics")
            times.append((time.perf_counter() - started) * 1000)
        median, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
        verdict = "met" if p95 < AIM_MS else "MISSED"
        print(
            f"/metrics: median {median:.1f} ms, p95 {p95:.1f} ms, {len(log.sql)} queries "
            f"({verdict}: aim {AIM_MS:.0f} ms)"
        )
        for sql in log.sql:  # each query's own time, as the database measures it
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
            plan = plan[0] if isinstance(plan, list) else plan
            print(f"    {plan['Execution Time']:7.2f} ms  {sql[:110]}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
