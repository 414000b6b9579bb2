"""Sync benchmark: the bulk diff sync against the naive per-item way, over a fake Alloy on a real socket.

A fake Alloy (a separate process) holds N job items with about 200 distinct crons. For each way it
times a first sync, a no-change re-sync and a re-sync after 1% of the items were edited in Alloy,
counting SQL queries, writes to the job tables and HTTP requests, then prints the ratios. The naive
way is per item ``CrontabSchedule.objects.get_or_create`` plus ``PeriodicTask.objects.update_or_create``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync python bench/sync_bench.py [--items 10000]

Runs in a throwaway test database that it creates and drops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks  # noqa: E402

from alloysync import fake_alloy  # noqa: E402
from alloysync.client import AlloyClient  # noqa: E402
from alloysync.mapping import ItemInvalid, job_spec_from_item  # noqa: E402
from alloysync.models import SyncRun  # noqa: E402
from alloysync.sync import SyncConfig, alloy_sync  # noqa: E402
from config.env_secrets import Secret  # noqa: E402
from scheduler.models import Job  # noqa: E402

API_KEY = "b0b0b0b0-1111-4222-8333-444455556666"
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)
ZONES = ("UTC", "Europe/London")


@dataclass
class Measure:
    seconds: float
    queries: int
    writes: int
    requests: int
    beat_reloaded: bool

    def row(self, label: str) -> str:
        reload = "yes" if self.beat_reloaded else "no"
        return f"  {label:<22}{self.seconds:9.2f} s{self.queries:10d}{self.writes:10d}{self.requests:10d}     {reload}"


def make_items(count: int) -> list[dict]:
    crons = [f"{minute} {hour} * * *" for hour in range(0, 24, 3) for minute in range(0, 60, 5)][:100]
    items = []
    for n in range(count):
        steps = f'examples.echo {{"message": "job {n}"}}\nexamples.sleep {{"seconds": 0}}'
        attributes = {
            fake_alloy.TITLE_ATTRIBUTE: f"Job {n}",
            fake_alloy.SAMPLE_CRON_ATTRIBUTE: crons[n % len(crons)],
            fake_alloy.SAMPLE_STEPS_ATTRIBUTE: steps,
            fake_alloy.SAMPLE_TIMEZONE_ATTRIBUTE: ZONES[(n // len(crons)) % len(ZONES)],
            fake_alloy.SAMPLE_FLAG_ATTRIBUTE: True,
        }
        items.append(fake_alloy.make_item(attributes, item_id=f"{n + 1:024x}"))
    return items


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_fake_alloy(items: list[dict], folder: Path) -> tuple[subprocess.Popen, str]:
    path = folder / "items.json"
    path.write_text(json.dumps(items))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "alloysync.fake_alloy", "--port", str(port), "--items", str(path), "--api-key", API_KEY],
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the fake Alloy did not start")


def configure(url: str) -> None:
    for name, value in fake_alloy.sample_alloy_settings(url, API_KEY).items():
        setattr(settings, name, value)
    settings.ALLOY_API_KEY = Secret(API_KEY)  # as config/settings.py holds it
    settings.ALLOY_MAX_REMOVAL_FRACTION = 1


class QueryCounter:
    """Counts every query and the writes outside the sync history (Django's own log stops at 9,000)."""

    def __init__(self) -> None:
        self.queries = self.writes = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        if WRITE.match(sql) and "alloysync_syncrun" not in sql:
            self.writes += 1
        return execute(sql, params, many, context)


def measure(action: Callable[[], int]) -> Measure:
    before = PeriodicTasks.last_change()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        requests = action()
        seconds = time.perf_counter() - started
    return Measure(seconds, counter.queries, counter.writes, requests, PeriodicTasks.last_change() != before)


def bulk_sync() -> int:
    run = alloy_sync(trigger=SyncRun.Trigger.COMMAND).run
    if run.status != SyncRun.Status.SUCCEEDED:
        raise SystemExit(f"sync {run.status}: {run.message}")
    return run.requests


def naive_sync() -> int:
    """The reference: read every item, then one get_or_create and one update_or_create per item."""
    config = SyncConfig.from_settings()
    with config.client() as client:
        for item in client.iter_items(config.query):
            try:
                spec = job_spec_from_item(item, config.codes, default_timezone=config.default_timezone)
            except ItemInvalid:
                continue
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=spec.crontab.minute,
                hour=spec.crontab.hour,
                day_of_month=spec.crontab.day_of_month,
                month_of_year=spec.crontab.month_of_year,
                day_of_week=spec.crontab.day_of_week,
                timezone=spec.timezone,
            )
            PeriodicTask.objects.update_or_create(
                name=f"naive {item.item_id}",
                defaults={"task": "scheduler.run_job", "crontab": crontab, "args": json.dumps([item.item_id])},
            )
        return client.requests_made


def edit_one_percent(url: str, count: int, round_number: int) -> None:
    """Edit 1% of the items through Alloy's API, as users would."""
    with AlloyClient(url, API_KEY) as client:
        for n in range(0, count, 100):
            item = client.get_item(f"{n + 1:024x}")
            client.update_item(
                item.item_id,
                collection=item.collection,
                signature=item.signature,
                attributes={fake_alloy.SAMPLE_CRON_ATTRIBUTE: f"{round_number} {n % 24} * * *"},
            )


def peak_memory_mb(action: Callable[[], int]) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def run_way(label: str, action: Callable[[], int], url: str, count: int, round_number: int) -> list[Measure]:
    first = measure(action)
    again = measure(action)
    edit_one_percent(url, count, round_number)
    changed = measure(action)
    print(f"{label}:")
    if label.startswith("bulk") and connection.vendor == "postgresql":
        print("  (new jobs and schedules are loaded with COPY: one stream each, not counted as queries)")
    print(f"  {'':<22}{'wall':>11}{'queries':>10}{'writes':>10}{'HTTP':>10}  beat reload")
    for name, result in (("first sync", first), ("no-change re-sync", again), ("1% changed re-sync", changed)):
        print(result.row(name))
    return [first, again, changed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()

    settings.DEBUG = False
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    folder = Path(tempfile.mkdtemp(prefix="alloysync-bench-"))
    process, url = start_fake_alloy(make_items(args.items), folder)
    try:
        configure(url)
        print(f"database: {connection.vendor}; {args.items} items, {len(ZONES) * 100} distinct (cron, zone) pairs")
        ours = run_way("bulk diff sync (alloysync)", bulk_sync, url, args.items, 1)
        memory = peak_memory_mb(bulk_sync)
        edit_one_percent(url, args.items, 2)
        memory_changed = peak_memory_mb(bulk_sync)
        print(f"  peak Python memory: no-change re-sync {memory:.1f} MB, 1% changed re-sync {memory_changed:.1f} MB")
        print(f"  jobs: {Job.objects.count()}, crontab rows: {CrontabSchedule.objects.count()}")
        naive = run_way("naive per-item upserts (reference)", naive_sync, url, args.items, 3)
        print("speed-up, naive time / alloysync time:")
        for name, mine, theirs in zip(("first sync", "no-change re-sync", "1% changed"), ours, naive, strict=True):
            print(f"  {name:<22}{theirs.seconds / mine.seconds:9.1f}x")
    finally:
        process.terminate()
        process.wait()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
