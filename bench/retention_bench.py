"""Retention benchmark: how fast ``prune_history`` deletes old runs, and where its time goes.

Inserts ``--runs`` finished runs from 200 days ago back (spread over ``--jobs`` jobs, a step on every
fifth, a failure every 97th), prunes them with each ``--batch-size``, and reports rows a second and
the time spent per kind of statement (page reads, deletes, the lease).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        python bench/retention_bench.py [--runs 200000] [--jobs 50] [--batch-size 500,2000,5000]

Runs in a throwaway test database that it creates and drops. PostgreSQL only (it fills the table
with generate_series).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from scheduler.jobspec import job_spec_build  # noqa: E402
from scheduler.models import StepRun  # noqa: E402
from scheduler.retention import history_prune  # noqa: E402
from scheduler.services import job_create  # noqa: E402
from tests.scheduler.test_retention import old_runs_insert  # noqa: E402 - the test's own fill

STEPS = 'examples.echo {"message": "bench"}'


class StatementTimes:
    """Seconds spent per kind of statement (its first words), through Django's execute wrapper."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        words = sql.split()
        kind = " ".join(words[:3]) if words[0] in {"DELETE", "UPDATE"} else " ".join(words[:1])
        if "ROW_NUMBER" in sql:
            kind = "SELECT kept (window)"
        elif words[0] == "SELECT":
            kind = "SELECT page"
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds[kind] += time.perf_counter() - started
            self.count[kind] += 1


def bench(runs: int, jobs: int, batch_size: int) -> None:
    _truncate()
    made = [
        job_create(spec=job_spec_build(name=f"bench {n}", cron="@daily", timezone="UTC", steps=STEPS))
        for n in range(jobs)
    ]
    started = time.perf_counter()
    old_runs_insert([job.pk for job in made], runs)
    steps = StepRun.objects.count()
    print(f"inserted {runs:,} runs and {steps:,} steps in {time.perf_counter() - started:.1f} s")
    times = StatementTimes()
    started = time.perf_counter()
    with connection.execute_wrapper(times):
        [outcome, *_] = history_prune(batch_size=batch_size)
    seconds = time.perf_counter() - started
    removed = outcome.removed
    print(
        f"batch {batch_size:,}: removed {removed['runs']:,} runs and {removed['steps']:,} steps in {seconds:.1f} s: "
        f"{removed['runs'] / seconds:,.0f} runs/s"
    )
    for kind, spent in sorted(times.seconds.items(), key=lambda item: -item[1]):
        print(f"    {spent:7.2f} s  {times.count[kind]:6,}x  {kind}")
    _truncate()


def _truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE scheduler_steprun, scheduler_alert, scheduler_jobrun, scheduler_job, "
            "django_celery_beat_periodictask, scheduler_schedulestate CASCADE"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--batch-size", default="2000", help="comma-separated batch sizes to try")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("retention_bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        for size in (int(part) for part in args.batch_size.split(",")):
            bench(args.runs, args.jobs, size)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
