"""Seconds from an edit in Alloy to the job's new cron in the database: by polling and by webhook.

Polling: incremental syncs run in a loop every ``interval`` seconds (this process) while a thread
edits items at random moments; each edit's latency ends when the sync that applied it returns. The
scheduled sync runs every ALLOY_SYNC_INTERVAL instead, so its latency is up to that interval plus a
sync's time: both are printed.

Webhook: the fake Alloy's workflow POSTs each edit to ``/alloy/webhook`` on a gunicorn process, and a
``celery -A config worker`` process runs the ``alloysync.read_items`` task it queues; the latency
ends when this process sees the job's cron change (polled every 20 ms). Edits are made one at a
time, spaced out, each on a different item. Beat is not running: every read is the webhook's.

Imported by ``alloy_both_ways_bench.py`` after ``django.setup()``; needs PostgreSQL for the webhook
(the server and worker share the test database).
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alloy_bench_fake import child_environment, free_port, item_id, rate_limited_total, spread
from django.conf import settings

from alloysync import fake_alloy
from alloysync.models import SyncRun
from alloysync.sync import alloy_sync
from scheduler.models import Job

PROJECT_DIR = Path(__file__).resolve().parent.parent
WEBHOOK_AIM_P95 = 5.0
# An edit not applied within this is counted as missed.
EDIT_TIMEOUT = 60.0
# The first edit waits for the server and the worker to be ready: not counted.
WARM_UP_TIMEOUT = 30.0


def cron_of(item: str) -> str | None:
    return Job.objects.filter(source=Job.Source.ALLOY, external_id=item).values_list("cron", flat=True).first()


@dataclass
class PollingResult:
    interval: float
    latencies: list[float]
    sync_seconds: list[float]
    missed: int
    requests: list[int] = field(default_factory=list)

    def report(self) -> None:
        real = settings.ALLOY_SYNC_INTERVAL
        slowest = max(self.sync_seconds, default=0.0)
        typical = sorted(self.sync_seconds)[len(self.sync_seconds) // 2] if self.sync_seconds else 0.0
        edits = len(self.latencies) + self.missed
        print(f"\nedit -> schedule by polling (incremental syncs every {self.interval:g} s, {edits} edits)")
        print(f"  measured: {spread(self.latencies)}; missed {self.missed}")
        print(
            f"  each sync: median {typical:.2f} s, max {slowest:.2f} s, "
            f"requests {min(self.requests, default=0)}-{max(self.requests, default=0)}"
        )
        print(
            f"  at ALLOY_SYNC_INTERVAL={real:g} s: p50 about {real / 2 + typical:.1f} s, "
            f"p95 about {0.95 * real + typical:.1f} s, worst {real + slowest:.1f} s (interval + sync)"
        )


class EditFeed(threading.Thread):
    """Edits ``count`` items' crons in the fake at random moments (gaps of 0 to ``max_gap`` seconds)."""

    def __init__(self, server: fake_alloy.FakeAlloyServer, items: list[str], max_gap: float, seed: int) -> None:
        super().__init__(name="bench-edits", daemon=True)
        self.server, self.items, self.max_gap = server, items, max_gap
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.pending: dict[str, tuple[str, float]] = {}  # item -> (new cron, edited at)

    def run(self) -> None:
        for number, item in enumerate(self.items):
            time.sleep(self.random.uniform(0, self.max_gap))
            cron = f"{number % 60} {number % 24} 2 * *"
            with self.lock:
                self.server.edit_item(item, {fake_alloy.SAMPLE_CRON_ATTRIBUTE: cron})
                self.pending[item] = (cron, time.monotonic())

    def settle(self, now: float) -> list[float]:
        """Latencies of the pending edits whose job now holds the new cron (they stop being pending)."""
        with self.lock:
            pending = dict(self.pending)
        jobs = Job.objects.filter(source=Job.Source.ALLOY, external_id__in=list(pending))
        held = dict(jobs.values_list("external_id", "cron"))
        done = [item for item, (cron, _) in pending.items() if held.get(item) == cron]
        with self.lock:
            latencies = [now - self.pending.pop(item)[1] for item in done]
        return latencies


def polling_latency(
    server: fake_alloy.FakeAlloyServer, items: list[str], interval: float, seed: int = 1
) -> PollingResult:
    """Incremental syncs every ``interval`` s while ``items`` are edited; the latency of each edit."""
    feed = EditFeed(server, items, interval, seed)
    result = PollingResult(interval, [], [], 0)
    feed.start()
    deadline = time.monotonic() + interval * len(items) + EDIT_TIMEOUT
    next_sync = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(max(0.0, next_sync - time.monotonic()))
        next_sync += interval
        started = time.monotonic()
        run = alloy_sync(trigger=SyncRun.Trigger.SCHEDULE).run
        finished = time.monotonic()
        result.sync_seconds.append(finished - started)
        result.requests.append(run.requests)
        result.latencies += feed.settle(finished)
        if not feed.is_alive() and not feed.pending:
            break
    result.missed = len(feed.pending)
    return result


@dataclass
class WebhookResult:
    latencies: list[float]
    missed: int
    calls_failed: list[fake_alloy.WorkflowCall]
    refused: int

    def problems(self) -> list[str]:
        found = []
        if self.missed or not self.latencies:
            found.append(f"{self.missed} edits never reached their job by webhook")
        elif (p95 := sorted(self.latencies)[round(0.95 * (len(self.latencies) - 1))]) >= WEBHOOK_AIM_P95:
            found.append(f"webhook edit -> schedule p95 {p95:.2f} s, aim under {WEBHOOK_AIM_P95:g} s")
        if self.calls_failed:
            found.append(f"{len(self.calls_failed)} workflow calls failed (e.g. {self.calls_failed[0].outcome})")
        if self.refused:
            found.append(f"{self.refused} requests answered 429 during the webhook run")
        return found

    def report(self) -> None:
        print(f"\nedit -> schedule by webhook (gunicorn + celery worker, {len(self.latencies)} edits one at a time)")
        print(f"  measured: {spread(self.latencies)}; missed {self.missed}")
        outcomes = ", ".join(sorted({str(call.outcome) for call in self.calls_failed}))
        failed = f"{len(self.calls_failed)}" + (f" ({outcomes})" if outcomes else "")
        print(f"  workflow calls failed: {failed}; 429s: {self.refused}")


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout:g} s")


@contextmanager
def server_and_worker(server: fake_alloy.FakeAlloyServer, page_size: int) -> Iterator[tuple[str, str, Path]]:
    """A gunicorn serving the project and a celery worker on a private queue; yields the webhook's
    URL, its secret and the folder of their logs."""
    secret = f"bench-{secrets.token_hex(16)}"
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="alloysync-alloy-bench-"))
    env = {
        **os.environ,
        **child_environment(server.url, page_size),
        "ALLOY_WEBHOOK_SECRET": secret,
        "CELERY_QUEUE": f"alloysync-alloy-bench-{uuid.uuid4().hex[:6]}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain http on loopback, as behind a TLS proxy
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
    }
    worker = ["worker", "--concurrency=1", "-Q", env["CELERY_QUEUE"], "-n", f"alloy-bench-{os.getpid()}@%h"]
    commands = {
        "gunicorn": [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        "worker": [sys.executable, "-m", "celery", "-A", "config", *worker, "--without-gossip", "--without-mingle"],
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in commands.items():
            with (logs / f"{name}.log").open("wb") as log:
                processes.append(subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=log))
        wait_for_port(port, processes[0])
        yield f"http://127.0.0.1:{port}/alloy/webhook", secret, logs
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def edit_and_wait(server: fake_alloy.FakeAlloyServer, item: str, cron: str, timeout: float) -> float | None:
    """Edit ``item``'s cron in the fake; seconds until its job holds it, None after ``timeout``."""
    edited = time.monotonic()
    server.edit_item(item, {fake_alloy.SAMPLE_CRON_ATTRIBUTE: cron})
    while time.monotonic() - edited < timeout:
        if cron_of(item) == cron:
            return time.monotonic() - edited
        time.sleep(0.02)
    return None


def webhook_latency(
    server: fake_alloy.FakeAlloyServer, items: list[str], page_size: int, seed: int = 2
) -> WebhookResult:
    """Each of ``items`` edited in turn (0.5 to 1.5 s apart) with the workflow on; the latency of each."""
    rng = random.Random(seed)
    refused = rate_limited_total(server)
    with server_and_worker(server, page_size) as (url, secret, logs):
        server.workflow = fake_alloy.Workflow(url=url, secret=secret)
        warm = edit_and_wait(server, items[0], "59 23 3 * *", WARM_UP_TIMEOUT)
        if warm is None:
            calls = server.workflow_calls[-3:]
            raise SystemExit(f"the webhook's first read never arrived (workflow calls {calls}); logs in {logs}")
        server.wait_for_workflow(10)
        warm_calls = len(server.workflow_calls)  # the first call may time out while the server warms up
        latencies, missed = [], 0
        for number, item in enumerate(items[1:]):
            time.sleep(rng.uniform(0.5, 1.5))
            latency = edit_and_wait(server, item, f"{number % 60} {number % 24} 4 * *", EDIT_TIMEOUT)
            if latency is None:
                missed += 1
            else:
                latencies.append(latency)
        server.wait_for_workflow(10)
        server.workflow = None
    failed = [call for call in server.workflow_calls[warm_calls:] if call.failed]
    return WebhookResult(latencies, missed, failed, rate_limited_total(server) - refused)


def latency_items(count: int, first: int, number: int) -> list[str]:
    """``number`` distinct items of ``count``, from the ``first``-th, spread over the set."""
    step = max(1, count // (number + 1))
    return [item_id((first + n * step) % count) for n in range(number)]
