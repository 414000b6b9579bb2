"""Runner overhead: a job of N ``examples.echo`` steps through the runner versus the same calls made directly.

Prints per-step overhead in ms, database queries per run (and per added step), and the queries and
runs a second of a one-step scheduled run as a worker makes it (the task's read of the job included),
against the reference before the run path was trimmed (12 queries). Runs against the database
DATABASE_URL names (SQLite by default), in a throwaway test database it creates and drops.

    python bench/runner_overhead.py [--runs 200] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from scheduler.jobspec import job_spec_build  # noqa: E402
from scheduler.models import Job, JobRun  # noqa: E402
from scheduler.registry import get_job_function  # noqa: E402
from scheduler.runner import job_run_execute  # noqa: E402
from scheduler.services import job_create  # noqa: E402


def make_job(steps: int):
    text = "\n".join(f'examples.echo {{"message": "step {n}"}}' for n in range(steps))
    spec = job_spec_build(name=f"bench {steps} steps", cron="0 0 * * *", timezone="UTC", steps=text)
    return job_create(spec=spec)


def time_direct(steps: int, runs: int) -> float:
    echo = get_job_function("examples.echo").func
    started = time.perf_counter()
    for _ in range(runs):
        for n in range(steps):
            echo(message=f"step {n}")
    return (time.perf_counter() - started) / runs


def time_runner(job, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run = job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
        samples.append(time.perf_counter() - started)
        if run.status != JobRun.Status.SUCCEEDED:
            raise SystemExit(f"benchmark run failed: {run.error}")
    return samples


def queries_per_run(job) -> int:
    # The query log keeps the last 9,000 queries; once full, the capture's count by index reads 0.
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    return len(captured)


#: A one-step run's queries before the run path was trimmed (the runner alone, as measured here then).
REFERENCE_QUERIES = 12


def scheduled_run(job_id: int) -> JobRun:
    """A one-step scheduled run as the worker's task makes it: read the job, then run it."""
    job = Job.objects.select_related("periodic_task").get(pk=job_id)
    return job_run_execute(job=job, trigger=JobRun.Trigger.SCHEDULE)


def scheduled_queries(job_id: int) -> int:
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        scheduled_run(job_id)
    return len(captured)


def scheduled_runs_per_second(job_id: int, runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        scheduled_run(job_id)
    return runs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        job = make_job(args.steps)
        one_step_job = make_job(1)
        time_runner(job, 5)  # warm up connections and caches
        direct = time_direct(args.steps, args.runs)
        samples = time_runner(job, args.runs)
        runner = statistics.median(samples)
        overhead_ms = (runner - direct) / args.steps * 1000
        queries, one_step_queries = queries_per_run(job), queries_per_run(one_step_job)
        per_step_queries = (queries - one_step_queries) / (args.steps - 1)
        task_queries = scheduled_queries(one_step_job.pk)
        rate = scheduled_runs_per_second(one_step_job.pk, args.runs)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    print(f"database: {connection.vendor}; {args.runs} runs of {args.steps} steps of examples.echo")
    print(f"direct calls:        {direct * 1000:8.3f} ms per {args.steps} calls")
    print(f"through the runner:  {runner * 1000:8.3f} ms per run (median; p95 {percentile(samples, 95) * 1000:.3f} ms)")
    print(f"overhead per step:   {overhead_ms:8.3f} ms (aim: under 2 ms)")
    print(
        f"queries per run:     {queries:8d} ({one_step_queries} for a 1-step run, {REFERENCE_QUERIES} before: "
        f"{REFERENCE_QUERIES / one_step_queries:.1f}x fewer; {per_step_queries:g} per added step)"
    )
    print(f"1-step scheduled run, as the worker's task makes it: {task_queries} queries (aim: at most 6)")
    print(f"1-step scheduled runs a second, one process, no broker: {rate:8.1f}")


def percentile(samples: list[float], pct: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
