"""Alloy both ways: requests, pacing and latency of the sync, the webhook and write-back, at Alloy's rate limit.

With the fake Alloy enforcing ``--rate-limit`` requests a minute per endpoint (Alloy's 100 by default),
for each ``--items`` size it times, on one client whose pacer follows the rate-limit headers:

- a first sync (a complete read: nothing succeeded yet),
- a no-change sync and a sync after 1% of the items were edited in Alloy, each both ways:
  incremental (the schedule's choice between complete reads) and complete (``mode="full"``, the way
  every sync read before incremental syncs; the ratio is printed),

with the HTTP requests sent, the wall time, the seconds the pacer waited and the 429s the fake sent
(must be none). Then, on a fake of ``--latency-items`` items, the seconds from an edit in Alloy to
the job's new cron in the database by polling and by webhook (a gunicorn and a celery worker
process: PostgreSQL only; ``alloy_latency_bench.py``), and write-back of ``--write-runs`` runs finishing
in the same minute under ALLOY_WRITE_RATE=``--write-rate`` (``alloy_write_back_bench.py``). Each part
can be skipped (``--no-sync``, ``--poll-edits 0``, ``--webhook-edits 0``, ``--write-runs 0``).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alloysync CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        python bench/alloy_both_ways_bench.py --items 1000,10000 [--page-size 100]

A complete read of N items at page size P is N/P + 1 query requests, paced to Alloy's limit: 100,000
items at 100 a page is over ten minutes a read; ``--page-size 1000`` (Alloy's maximum) makes it one.

Runs in a throwaway test database that it creates and drops; the fake Alloy runs in this process on a
real socket. Exits non-zero when an aim is missed: a 429 received, a no-change incremental sync of
more than 3 requests, a wrong job, the write rate exceeded, a state lost, a webhook p95 of 5 s or more.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import alloy_latency_bench as latency  # noqa: E402
import alloy_write_back_bench as write_back  # noqa: E402
from alloy_bench_fake import API_KEY, configure, item_id, rate_limited_total, start_fake  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from alloysync import fake_alloy  # noqa: E402
from alloysync.client import AlloyClient  # noqa: E402
from alloysync.models import SyncRun  # noqa: E402
from alloysync.pacing import shared_pacer  # noqa: E402
from alloysync.sync import alloy_sync  # noqa: E402
from scheduler.models import Job  # noqa: E402

# The aim for a sync that finds nothing changed.
NO_CHANGE_MAX_REQUESTS = 3


def fresh_tenant() -> None:
    """Empty the test database (jobs, runs, syncs, shared rate budgets): each part has a fake Alloy of its own.

    A flush (TRUNCATE on PostgreSQL): deleting 100,000 jobs through the ORM takes minutes of signals.
    """
    call_command("flush", interactive=False, verbosity=0)


def edit_crons(server: fake_alloy.FakeAlloyServer, count: int, round_number: int) -> dict[str, str]:
    """Edit the cron of 1% of the items in Alloy (every 100th, shifted by round); the new crons by item id."""
    edited = {}
    for n in range(round_number, count, 100):
        cron = f"{round_number} {n % 24} * * *"
        server.edit_item(item_id(n), {fake_alloy.SAMPLE_CRON_ATTRIBUTE: cron})
        edited[item_id(n)] = cron
    return edited


def wrong_crons(expected: dict[str, str]) -> int:
    """How many of these items' jobs do not hold the cron Alloy now shows."""
    jobs = Job.objects.filter(source=Job.Source.ALLOY, external_id__in=list(expected))
    held = dict(jobs.values_list("external_id", "cron"))
    return sum(1 for key, cron in expected.items() if held.get(key) != cron)


@dataclass
class SyncMeasure:
    mode: str
    requests: int
    seconds: float
    paced: float
    refused: int
    status: str

    def cells(self) -> str:
        return f"{self.requests:>9,d} {self.seconds:>9.2f} s {self.paced:>9.2f} s {self.refused:>5d}"


class SyncBench:
    """One size: a fake Alloy, one client (its pacer shared across the syncs), the syncs measured."""

    def __init__(self, server: fake_alloy.FakeAlloyServer, client: AlloyClient) -> None:
        self.server = server
        self.client = client

    def measure(self, mode: str | None) -> SyncMeasure:
        client, refused = self.client, rate_limited_total(self.server)
        paced = client.paced_seconds
        started = time.perf_counter()
        run = alloy_sync(trigger=SyncRun.Trigger.SCHEDULE, mode=mode, client=client).run
        seconds = time.perf_counter() - started
        return SyncMeasure(
            mode=run.mode,
            requests=run.requests,
            seconds=seconds,
            paced=client.paced_seconds - paced,
            refused=rate_limited_total(self.server) - refused,
            status=run.status,
        )


@dataclass
class SizeResult:
    items: int
    page_size: int
    first: SyncMeasure
    no_change: tuple[SyncMeasure, SyncMeasure]  # incremental, full
    changed: tuple[SyncMeasure, SyncMeasure]  # incremental, full
    wrong: int
    jobs: int

    @property
    def measures(self) -> list[SyncMeasure]:
        return [self.first, *self.no_change, *self.changed]

    def problems(self) -> list[str]:
        found = [f"a sync ended {m.status} ({m.mode})" for m in self.measures if m.status != SyncRun.Status.SUCCEEDED]
        if refused := sum(m.refused for m in self.measures):
            found.append(f"{refused} requests answered 429 at {self.items:,d} items")
        if self.no_change[0].requests > NO_CHANGE_MAX_REQUESTS:
            found.append(f"a no-change incremental sync sent {self.no_change[0].requests} requests at {self.items:,d}")
        if self.no_change[0].mode != SyncRun.Mode.INCREMENTAL or self.changed[0].mode != SyncRun.Mode.INCREMENTAL:
            found.append("an incremental sync became a complete read")
        if self.first.mode != SyncRun.Mode.FULL:
            found.append(f"the first sync was {self.first.mode}, not a complete read")
        if self.wrong:
            found.append(f"{self.wrong} edited items' jobs do not hold the new cron")
        if self.jobs != self.items:
            found.append(f"{self.jobs} jobs for {self.items} items")
        return found


def bench_size(count: int, page_size: int, rate_limit: int) -> SizeResult:
    """Measure the syncs at one size, in a database emptied of the previous size's jobs."""
    fresh_tenant()
    server = start_fake(count, rate_limit)
    try:
        configure(server.url, page_size)
        with AlloyClient(server.url, API_KEY, page_size=page_size, pacer=shared_pacer()) as client:
            bench = SyncBench(server, client)
            first = bench.measure(None)
            no_change = (bench.measure(None), bench.measure(SyncRun.Mode.FULL))
            edited = edit_crons(server, count, 1)
            changed_incremental = bench.measure(None)
            edited.update(edit_crons(server, count, 2))
            changed = (changed_incremental, bench.measure(SyncRun.Mode.FULL))
        jobs = Job.objects.filter(source=Job.Source.ALLOY, removed_at__isnull=True).count()
        return SizeResult(count, page_size, first, no_change, changed, wrong_crons(edited), jobs)
    finally:
        server.stop()


def print_size(result: SizeResult, rate_limit: int) -> None:
    print(
        f"\n{result.items:,d} items, page size {result.page_size}, "
        f"fake Alloy limit {rate_limit} requests a minute per endpoint"
    )
    print(f"  {'':<34}{'requests':>9} {'wall':>11} {'paced':>11} {'429s':>5}")
    rows = (
        ("first sync (complete)", result.first),
        ("no change, incremental", result.no_change[0]),
        ("no change, complete (today)", result.no_change[1]),
        ("1% changed, incremental", result.changed[0]),
        ("1% changed, complete (today)", result.changed[1]),
    )
    for label, measure in rows:
        print(f"  {label:<34}{measure.cells()}")
    for label, (mine, full) in (("no change", result.no_change), ("1% changed", result.changed)):
        print(
            f"  {label}: complete / incremental = {full.requests / max(mine.requests, 1):.0f}x requests, "
            f"{full.seconds / max(mine.seconds, 1e-9):.1f}x wall time"
        )
    print(f"  jobs held: {result.jobs:,d}; edited items whose job lacks the new cron: {result.wrong}")


def latency_step(args: argparse.Namespace) -> list[str]:
    """Edit -> schedule by polling and by webhook, on a fake of ``--latency-items`` items."""
    problems: list[str] = []
    count = args.latency_items
    if not args.poll_edits and not args.webhook_edits:
        return problems
    fresh_tenant()
    server = start_fake(count, args.rate_limit)
    try:
        configure(server.url, args.page_size)
        first = alloy_sync(trigger=SyncRun.Trigger.COMMAND).run
        if first.status != SyncRun.Status.SUCCEEDED:
            return [f"latency: the first sync {first.status}: {first.message}"]
        if args.poll_edits:
            polled = latency.polling_latency(
                server, latency.latency_items(count, 0, args.poll_edits), args.poll_interval
            )
            polled.report()
            problems += [f"{polled.missed} edits never reached their job by polling"] if polled.missed else []
        if args.webhook_edits and connection.vendor != "postgresql":
            print("\nedit -> schedule by webhook: skipped (the server and worker need DATABASE_URL on PostgreSQL)")
        elif args.webhook_edits:
            hooked = latency.webhook_latency(
                server, latency.latency_items(count, 1, args.webhook_edits + 1), args.page_size
            )
            hooked.report()
            problems += hooked.problems()
    finally:
        server.stop()
    return problems


def write_back_step(args: argparse.Namespace) -> list[str]:
    if not args.write_runs:
        return []
    fresh_tenant()
    result = write_back.write_back_bench(
        args.write_runs, args.write_rate, args.rate_limit, args.write_interval, args.page_size
    )
    result.report()
    return result.problems()


def parse_sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=parse_sizes, default=[1000], help="item counts, comma-separated")
    parser.add_argument("--page-size", type=int, default=100, help="ALLOY_PAGE_SIZE (Alloy's maximum is 1000)")
    parser.add_argument("--rate-limit", type=int, default=100, help="the fake's requests per endpoint per minute")
    parser.add_argument("--latency-items", type=int, default=1000, help="items held while latency is measured")
    parser.add_argument("--poll-edits", type=int, default=20, help="edits timed by polling (0: skip)")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds between polling syncs")
    parser.add_argument("--webhook-edits", type=int, default=50, help="edits timed by webhook (0: skip)")
    parser.add_argument("--write-runs", type=int, default=1000, help="jobs that finish a run at once (0: skip)")
    parser.add_argument("--write-rate", type=int, default=600, help="ALLOY_WRITE_RATE for the write-back part")
    parser.add_argument("--write-interval", type=float, default=10.0, help="seconds between write-back passes")
    parser.add_argument("--no-sync", action="store_true", help="skip the sync part (--items)")
    return parser.parse_args(argv)


def sync_step(args: argparse.Namespace) -> list[str]:
    problems = []
    for count in args.items:
        result = bench_size(count, args.page_size, args.rate_limit)
        print_size(result, args.rate_limit)
        problems += result.problems()
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings.DEBUG = False
    for name in ("alloysync", "scheduler"):  # a line per sync or run would bury the figures
        logging.getLogger(name).setLevel(logging.WARNING)
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        sizes = "no sync sizes" if args.no_sync else f"sizes {', '.join(f'{n:,d}' for n in args.items)}"
        print(f"database: {connection.vendor}; {sizes}; Alloy's limit {args.rate_limit} requests a minute")
        problems = [] if args.no_sync else sync_step(args)
        problems += latency_step(args)
        problems += write_back_step(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    for problem in problems:
        print(f"AIM MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
