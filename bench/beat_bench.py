"""Beat benchmark: the project's JobScheduler against django-celery-beat's DatabaseScheduler.

For each size (enabled jobs) it measures, for both schedulers in the same run: start (construct and
first tick), Python memory while starting, an idle tick, a tick after 10 jobs changed, and sending a
burst of due jobs (2,000 for JobScheduler; a smaller one for DatabaseScheduler, compared by rate).
Messages go to a private queue on the configured broker, purged afterwards.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        python bench/beat_bench.py [--jobs 1000,10000,50000] [--burst 2000] [--reference-burst 100]

Runs in a throwaway test database that it creates and drops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

import logging  # noqa: E402

from celery.beat import Scheduler  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks  # noqa: E402
from django_celery_beat.schedulers import DatabaseScheduler  # noqa: E402

from config import celery_app  # noqa: E402
from scheduler.beat import JobScheduler  # noqa: E402
from scheduler.changes import JobChanges, jobs_apply_changes  # noqa: E402
from scheduler.jobspec import job_spec_build  # noqa: E402
from scheduler.models import Job, JobRun, Lease, ScheduleState  # noqa: E402

QUEUE = "alloysync-beat-bench"
STEPS = 'examples.echo {"message": "bench"}'


@dataclass
class Figures:
    start: float
    memory_mb: float
    idle_tick: float
    changed_tick: float
    burst: int
    burst_seconds: float

    @property
    def rate(self) -> float:
        return self.burst / self.burst_seconds


def quiet_crons(count: int) -> list[str]:
    """Hourly crons for ``count`` jobs at 45 different minutes, none in the next ten minutes.

    Idle ticks are then really idle, and every job is an entry DatabaseScheduler must load (it
    leaves out crontabs whose hour is not the current one, so specific hours would flatter it).
    """
    minute = timezone.now().minute
    return [f"{(minute + 10 + n % 45) % 60} * * * *" for n in range(count)]


def create_jobs(count: int) -> None:
    crons = quiet_crons(count)
    specs = {cron: job_spec_build(name="bench", cron=cron, timezone="UTC", steps=STEPS) for cron in set(crons)}
    for start in range(0, count, 10_000):
        chunk = range(start, min(count, start + 10_000))
        jobs_apply_changes(JobChanges(source="alloy", create=[(f"{n:024x}", specs[crons[n]]) for n in chunk]))
    # As if the jobs were made an hour ago: a restart is then measured in the steady state, not
    # within the minute beat looks back over for late commits.
    PeriodicTask.objects.update(date_changed=F("date_changed") - timedelta(hours=1))


def clear_jobs() -> None:
    ScheduleState.objects.all().delete()
    JobRun.objects.all().delete()
    Job.objects.all().delete()  # deletes their periodic tasks too
    PeriodicTask.objects.all().delete()
    CrontabSchedule.objects.all().delete()
    Lease.objects.all().delete()


def change_ten_jobs(round_number: int) -> None:
    ids = list(Job.objects.order_by("pk").values_list("pk", flat=True)[:10])
    minute = (timezone.now().minute + 30 + round_number) % 60
    spec = job_spec_build(name="bench", cron=f"{minute} * * * *", timezone="UTC", steps=STEPS)
    jobs_apply_changes(JobChanges(source="alloy", update=[(job_id, spec) for job_id in ids]))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def timed_start(start: Callable[[], Scheduler]) -> float:
    """Seconds to construct a scheduler and run its first tick; it is closed afterwards, so the
    next one measured gets the leader lease at once."""
    started = time.perf_counter()
    scheduler = start()
    seconds = time.perf_counter() - started
    scheduler.close()
    return seconds


def peak_memory_mb(start: Callable[[], Scheduler]) -> float:
    tracemalloc.start()
    try:
        start().close()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def start_ours() -> JobScheduler:
    scheduler = JobScheduler(app=celery_app)
    scheduler.tick()
    if not scheduler.is_leader:
        raise SystemExit("benchmark scheduler did not get the leader lease")
    return scheduler


def start_theirs() -> DatabaseScheduler:
    scheduler = DatabaseScheduler(app=celery_app)
    scheduler.tick()
    return scheduler


def measure_ours(count: int, burst: int) -> Figures:
    start = timed_start(start_ours)  # states exist: this is a restart, as in production
    memory = peak_memory_mb(start_ours)
    scheduler = start_ours()
    idle = statistics.median(timed(scheduler.tick) for _ in range(20))
    changed = []
    for round_number in range(5):
        change_ten_jobs(round_number)
        changed.append(timed(scheduler.tick))
    due_ids = list(ScheduleState.objects.order_by("pk").values_list("pk", flat=True)[:burst])
    ScheduleState.objects.filter(pk__in=due_ids).update(next_due_at=timezone.now() - timedelta(seconds=1))
    started = time.perf_counter()
    while (
        scheduler.tick() == 0 or ScheduleState.objects.filter(pk__in=due_ids, next_due_at__lte=timezone.now()).exists()
    ):
        pass
    seconds = time.perf_counter() - started
    scheduler.close()
    return Figures(start, memory, idle, statistics.median(changed), burst, seconds)


def measure_theirs(count: int, burst: int) -> Figures:
    start = timed_start(start_theirs)
    memory = peak_memory_mb(start_theirs)
    scheduler = start_theirs()
    idle = statistics.median(timed(scheduler.tick) for _ in range(5))
    changed = []
    for round_number in range(2):
        for task in PeriodicTask.objects.filter(task="scheduler.run_job").order_by("pk")[:10]:
            task.description = f"changed {round_number}"
            task.save()  # the way an admin edit reaches it: the signal marks the schedule changed
        changed.append(timed(scheduler.tick))
    # A burst: entries whose last run was a day ago are due at once.
    tasks = PeriodicTask.objects.filter(task="scheduler.run_job").order_by("pk")[:burst]
    PeriodicTask.objects.filter(pk__in=list(tasks.values_list("pk", flat=True))).update(
        last_run_at=timezone.now() - timedelta(days=1)
    )
    PeriodicTasks.update_changed()
    scheduler.tick()  # reload with the new last-run times (not counted)
    sent = 0
    send = scheduler.apply_async

    def counted_send(*args: object, **kwargs: object) -> object:
        nonlocal sent
        sent += 1
        return send(*args, **kwargs)

    scheduler.apply_async = counted_send
    started = time.perf_counter()
    while sent < burst and time.perf_counter() - started < 600:
        scheduler.tick()
    seconds = time.perf_counter() - started
    scheduler.close()
    return Figures(start, memory, idle, statistics.median(changed), sent, seconds)


def first_start_seconds() -> float:
    ScheduleState.objects.all().delete()
    scheduler = JobScheduler(app=celery_app)
    started = time.perf_counter()
    while scheduler.tick() == 0 or ScheduleState.objects.count() < PeriodicTask.objects.count():
        pass
    seconds = time.perf_counter() - started
    scheduler.close()
    return seconds


def report(count: int, ours: Figures, theirs: Figures, first_start: float) -> None:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.2f} ms"

    def burst(figures: Figures) -> str:
        return f"{figures.rate:.1f}/s ({figures.burst} in {figures.burst_seconds:.2f} s)"

    a, b = ours, theirs
    rows = [
        ("start (restart)", f"{a.start:.3f} s", f"{b.start:.3f} s", b.start / a.start),
        ("memory while starting", f"{a.memory_mb:.1f} MB", f"{b.memory_mb:.1f} MB", b.memory_mb / a.memory_mb),
        ("idle tick", ms(a.idle_tick), ms(b.idle_tick), b.idle_tick / a.idle_tick),
        ("tick after 10 changed", ms(a.changed_tick), ms(b.changed_tick), b.changed_tick / a.changed_tick),
        ("burst: jobs sent per second", burst(a), burst(b), a.rate / b.rate),
    ]
    print(
        f"\n{count} enabled jobs ({connection.vendor}); very first start, computing every due time: {first_start:.2f} s"
    )
    print(f"  {'':<30}{'JobScheduler':>32}{'DatabaseScheduler':>32}{'ratio':>9}")
    for name, mine, reference, ratio in rows:
        print(f"  {name:<30}{mine:>32}{reference:>32}{ratio:>8.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="1000,10000,50000")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--reference-burst", type=int, default=100)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    settings.DEBUG = False
    celery_app.conf.task_default_queue = QUEUE
    celery_app.conf.beat_max_loop_interval = 5
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    results = {}
    try:
        for count in (int(size) for size in args.jobs.split(",")):
            clear_jobs()
            create_jobs(count)
            first_start = first_start_seconds()
            ours = measure_ours(count, min(args.burst, count))
            theirs = measure_theirs(count, min(args.reference_burst, count))
            report(count, ours, theirs, first_start)
            results[count] = ours
    finally:
        with celery_app.connection_for_write() as broker:
            broker.default_channel.queue_purge(QUEUE)
        connection.creation.destroy_test_db(old_name, verbosity=0)
    if len(results) > 1:
        smallest, largest = min(results), max(results)
        a, b = results[smallest], results[largest]
        print(f"\nJobScheduler at {largest} jobs against {smallest} (aim: within 2x):")
        for name, small, large in (
            ("start", a.start, b.start),
            ("idle tick", a.idle_tick, b.idle_tick),
            ("tick after 10 changed", a.changed_tick, b.changed_tick),
            ("burst time per job", a.burst_seconds / a.burst, b.burst_seconds / b.burst),
        ):
            print(f"  {name:<24}{large / small:6.2f}x")


if __name__ == "__main__":
    main()
