"""Load benchmark: N jobs due in the same minute, a real beat and two worker processes.

Prints the lag from each job's due time to its first step's start (median, 95th percentile, max),
checks every job ran exactly once, how long the whole burst took, the runs a second (against the 57
measured on the reference machine before the run path was trimmed) and the queries one run costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        python bench/load_bench.py [--jobs 1000] [--workers 2]

Runs in a throwaway test database that it creates and drops, on a private queue.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Min  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from scheduler.changes import JobChanges, jobs_apply_changes  # noqa: E402
from scheduler.jobspec import job_spec_build  # noqa: E402
from scheduler.models import Job, JobRun  # noqa: E402
from scheduler.tasks import run_job  # noqa: E402

#: Runs a second for 1,000 jobs due at once on two worker processes, before the run path was trimmed
#: (median lag 4.6 s, p95 8.4 s on the reference machine).
REFERENCE_RUNS_PER_SECOND = 57
#: A one-step run's queries then (the runner's; the task's read of the job came on top).
REFERENCE_QUERIES = 12


def child_database_url() -> str:
    db = settings.DATABASES["default"]
    credentials = f"{db['USER']}@" if db.get("USER") else ""
    url = f"postgres://{credentials}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    # The workers keep their connections as configured (DATABASE_URL's ?conn_max_age=...), as in production.
    options = {"conn_max_age": db.get("CONN_MAX_AGE"), "conn_health_checks": db.get("CONN_HEALTH_CHECKS")}
    query = "&".join(f"{name}={value}" for name, value in options.items() if value)
    return f"{url}?{query}" if query else url


def percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes and their descendants (the prefork
    children): steadier than wall time on a machine shared with other work."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    wanted, frontier = set(pids), list(pids)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in wanted]
        wanted.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in wanted)


def task_queries(spec_source: str) -> int:
    """Queries of one scheduled one-step run made by the worker's task itself, in this process."""
    spec = job_spec_build(name="queries", cron="0 0 1 1 *", timezone="UTC", steps='examples.echo {"message": "x"}')
    jobs_apply_changes(JobChanges(source=spec_source, create=[("f" * 24, spec)]))
    job = Job.objects.get(source=spec_source, external_id="f" * 24)
    with CaptureQueriesContext(connection) as captured:
        run_job.apply(args=[job.pk], kwargs={"due_at": timezone.now().isoformat()})
    job.delete()
    return len(captured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if connection.vendor != "postgresql" or settings.CELERY_BROKER_URL.startswith("filesystem"):
        raise SystemExit("set DATABASE_URL to PostgreSQL and CELERY_BROKER_URL to Redis or RabbitMQ")
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    queue = f"alloysync-load-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "DATABASE_URL": child_database_url(), "CELERY_QUEUE": queue, "LOG_LEVEL": "WARNING"}
    processes, logs = [], Path(tempfile.mkdtemp(prefix="alloysync-load-"))
    try:
        queries = task_queries("alloy")
        due = (timezone.now() + timedelta(seconds=40)).replace(second=0, microsecond=0) + timedelta(minutes=1)
        spec = job_spec_build(
            name="load", cron=f"{due.minute} {due.hour} * * *", timezone="UTC", steps='examples.echo {"message": "x"}'
        )
        jobs_apply_changes(JobChanges(source="alloy", create=[(f"{n:024x}", spec) for n in range(args.jobs)]))
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        commands = [
            [*celery, "worker", "--concurrency=1", "-Q", queue, "-n", f"load{n}@%h"] for n in range(args.workers)
        ]
        commands.append([*celery, "beat", "--pidfile=", "-s", str(logs / "beat-schedule")])
        for number, command in enumerate(commands):
            with (logs / f"{number}.log").open("wb") as log:
                processes.append(subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=log))
        print(f"{args.jobs} jobs due at {due:%H:%M:%S} UTC; {args.workers} worker processes; logs in {logs}")
        workers = [process.pid for process in processes[: args.workers]]
        while timezone.now() < due:
            time.sleep(0.2)
        cpu_at_due = cpu_seconds(workers)
        runs = JobRun.objects.filter(due_at=due, finished_at__isnull=False)
        deadline = due + timedelta(minutes=5)
        while runs.count() < args.jobs and timezone.now() < deadline:
            time.sleep(1)
        cpu_used = cpu_seconds(workers) - cpu_at_due
        time.sleep(3)
        starts = JobRun.objects.filter(due_at=due).annotate(first_step=Min("steps__started_at"))
        lags = [(run.first_step - due).total_seconds() for run in starts if run.first_step]
        per_job = Counter(run.job_id for run in starts)
        finished = max(run.finished_at for run in JobRun.objects.filter(due_at=due))
        total = sum(per_job.values())
        print(f"runs: {len(per_job)} jobs ran, {total} runs, duplicates: {total - len(per_job)}")
        print(f"lag, due time to first step: median {statistics.median(lags):.2f} s, "
              f"p95 {percentile(lags, 95):.2f} s, max {max(lags):.2f} s")  # fmt: skip
        burst = (finished - due).total_seconds()
        first_start = min(run.started_at for run in JobRun.objects.filter(due_at=due) if run.started_at)
        span = (finished - first_start).total_seconds()
        print(
            f"workers busy from the first run's start to the last one's end: {span:.1f} s ({total / span:.1f} runs/s)"
        )
        rate = total / burst
        print(f"whole burst done {burst:.1f} s after the due time")
        print(
            f"runs a second: {rate:.1f} ({rate / args.workers:.1f} per worker process; "
            f"{rate / REFERENCE_RUNS_PER_SECOND:.2f}x the reference {REFERENCE_RUNS_PER_SECOND})"
        )
        print(f"worker CPU per run (user + system, worker processes and children): {cpu_used / total * 1000:.1f} ms")
        print(
            f"queries per one-step run, the task's read of the job included: {queries} (reference {REFERENCE_QUERIES})"
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
