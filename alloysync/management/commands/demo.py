"""``manage.py demo``: the whole product on the embedded defaults, for a first look.

Migrates, creates an admin login, then starts the bundled fake Alloy (sample items), a Celery
worker, beat and the admin web server as child processes, all on the embedded broker and SQLite.
It syncs once and prints the summary and the invalid sample items, then waits for beat to send the
every-minute sample job and prints that run with its steps. Then it shows the way back: what the
fake Alloy now holds on those items, written there by the worker (the refusal on an invalid item,
the sample job's status after its run). Ctrl-C stops every process it started.
Child processes log to VAR_DIR/logs/.

What can stand in its way is said on the terminal, with what to do (``alloysync.demo_steps``): a taken
admin port, before anything starts; a web server that does not start, before any login is printed;
another sync holding the sync lock, waited for up to ``--sync-wait`` seconds, then gone on without.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from alloysync import fake_alloy
from alloysync.demo_steps import (
    admin_port_check,
    alloy_shows,
    demo_sync,
    demo_sync_config,
    port_advice,
    seconds,
    server_wait,
    tcp_port,
    wait_for_alloy,
)
from alloysync.models import SyncRun
from alloysync.sync import SyncOutcome
from scheduler.models import Job, JobRun

# The sample item that runs every minute: the one the demo waits for.
EVERY_MINUTE_ITEM = "65f0c1a0e4d0a1b2c3d4e505"


class Command(BaseCommand):
    help = "Run fake Alloy, worker, beat and admin on the embedded defaults; show a sync and a scheduled run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=tcp_port, default=8000, help="admin web server port (127.0.0.1 only)")
        parser.add_argument("--once", action="store_true", help="stop after the first scheduled run is shown")
        parser.add_argument("--timeout", type=seconds, default=150, help="seconds to wait for that run")
        parser.add_argument(
            "--sync-wait",
            type=seconds,
            default=30,
            help="seconds to wait while another sync holds the sync lock, before going on without the demo's own",
        )

    def handle(self, *args: Any, port: int, once: bool, timeout: float, sync_wait: float, **options: Any) -> None:
        admin_port_check(port)  # before anything starts, and long before a login for it is printed
        _stop_on_signals()
        call_command("migrate", verbosity=0)
        # The demo's own sync marks items for write-back, as a worker's would with these settings.
        for name, value in fake_alloy.sample_write_back_settings().items():
            setattr(settings, name, value)
        password = self._admin_password()
        logs = settings.VAR_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        started_at = timezone.now()
        with _children() as processes:
            try:
                url = self._start_fake_alloy(processes, logs)
                environment = {**os.environ, **fake_alloy.sample_alloy_settings(url, fake_alloy.DEMO_API_KEY)}
                environment.update(fake_alloy.sample_write_back_settings())
                environment["ALLOY_SYNC_INTERVAL"] = "60"
                environment["WRITE_BACK_INTERVAL"] = "2"  # the way back shows within seconds
                outcome = demo_sync(demo_sync_config(url), wait=sync_wait, say=self._warn)
                if outcome is not None:
                    self._show_sync(outcome)
                web = self._start_services(processes, logs, environment, port)
                server_wait(
                    port, web, logs / "web.log", name="the admin web server", advice=port_advice(port), health=True
                )
                self.stdout.write(f"Admin: http://127.0.0.1:{port}/admin/  user: admin  password: {password}")
                self.stdout.write(f"Dashboard: http://127.0.0.1:{port}/admin/dashboard/")
                pids = ", ".join(str(process.pid) for process in processes)
                self.stdout.write(f"Logs of the fake Alloy, worker, beat and web server (pids {pids}): {logs}/")
                job = self._wait_for_job(processes, logs, timeout)
                if outcome is not None and outcome.run.errors:
                    self._show_refusal_in_alloy(url, outcome.run.errors[0], processes, logs)
                self.stdout.write(f"Waiting for beat to send {job.name!r} ({job.cron}), due at the next minute...")
                run = self._wait_for_run(job, started_at, processes, logs, timeout)
                self._show_run(run)
                self._show_state_in_alloy(url, run, processes, logs, timeout)
                if not once:
                    self.stdout.write("Running; press Ctrl-C to stop.")
                    self._wait_while_running(processes, logs)
            except KeyboardInterrupt:
                self.stdout.write("Stopping...")
        self.stdout.write("Stopped.")

    def _admin_password(self) -> str:
        users = get_user_model().objects
        password = secrets.token_urlsafe(12)
        user = users.filter(username="admin").first() or users.create_superuser("admin", "admin@localhost")
        user.set_password(password)
        user.save()
        return password

    def _start_fake_alloy(self, processes: list[subprocess.Popen[bytes]], logs: Path) -> str:
        port = _free_port()
        # The key given explicitly: an ALLOY_API_KEY in the user's shell must not replace the demo's own.
        command = [
            *(sys.executable, "manage.py", "fake_alloy"),
            *("--port", str(port), "--api-key", fake_alloy.DEMO_API_KEY),
        ]
        processes.append(_spawn(command, logs / "fake-alloy.log", dict(os.environ)))
        server_wait(port, processes[-1], logs / "fake-alloy.log", name="the fake Alloy")
        url = f"http://127.0.0.1:{port}"
        self.stdout.write(f"Fake Alloy: {url} (sample items from {fake_alloy.SAMPLE_ITEMS_PATH.name})")
        return url

    def _start_services(
        self, processes: list[subprocess.Popen[bytes]], logs: Path, environment: dict[str, str], port: int
    ) -> subprocess.Popen[bytes]:
        """Start the worker, beat and the admin web server; return the web server's process."""
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        commands = {
            "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2"],
            "beat": [*celery, "beat", "--loglevel=INFO", "--pidfile=", "-s", str(settings.VAR_DIR / "beat-schedule")],
            "web": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        }
        for name, command in commands.items():
            processes.append(_spawn(command, logs / f"{name}.log", environment))
        return processes[-1]

    def _warn(self, message: str) -> None:
        self.stdout.write(self.style.WARNING(message))

    def _wait_for_job(self, processes: list[subprocess.Popen[bytes]], logs: Path, timeout: float) -> Job:
        """The every-minute sample job; made by the demo's sync, or by beat's if the demo went on without."""
        deadline = time.monotonic() + timeout
        jobs = Job.objects.filter(source=Job.Source.ALLOY, external_id=EVERY_MINUTE_ITEM)
        if not jobs.exists():
            self.stdout.write(
                "Waiting for a sync from the fake Alloy to make the sample jobs (beat syncs every minute)..."
            )
        while (job := jobs.first()) is None:
            if time.monotonic() >= deadline:
                raise CommandError(f"no sync made the sample jobs within {timeout:g} s; see the worker log in {logs}/")
            _check_alive(processes, logs)
            time.sleep(1)
        return job

    def _show_sync(self, outcome: SyncOutcome) -> None:
        run = outcome.run
        self.stdout.write(self.style.SUCCESS(f"Synced from Alloy: {run.summary()}"))
        for error in run.errors:
            self.stdout.write(
                self.style.WARNING(f"  invalid {error['item_id']} {error['title']!r}: {error['message']}")
            )
        if run.status != SyncRun.Status.SUCCEEDED:
            raise CommandError(f"the first sync {run.status}: {run.message}")

    def _wait_for_run(
        self, job: Job, since: Any, processes: list[subprocess.Popen[bytes]], logs: Path, timeout: float
    ) -> JobRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finished = JobRun.objects.filter(job=job, trigger=JobRun.Trigger.SCHEDULE, created_at__gte=since)
            run = finished.exclude(finished_at=None).first()
            if run:
                return run
            _check_alive(processes, logs)
            time.sleep(1)
        raise CommandError(f"no scheduled run within {timeout:g} s; see the worker and beat logs in {logs}/")

    def _show_run(self, run: JobRun) -> None:
        summary = f"Run {run.pk} of {run.job.name!r}: {run.status} (trigger: {run.trigger}, worker {run.worker})"
        self.stdout.write(self.style.SUCCESS(summary))
        for step in run.steps.order_by("position"):
            self.stdout.write(f"  step {step.position} {step.function} {step.kwargs}: {step.status} -> {step.result!r}")

    def _show_refusal_in_alloy(
        self, url: str, error: dict[str, str], processes: list[subprocess.Popen[bytes]], logs: Path
    ) -> None:
        """What Alloy now shows on an invalid sample item: written there by the worker."""
        message = wait_for_alloy(
            url,
            error["item_id"],
            fake_alloy.SAMPLE_MESSAGE_ATTRIBUTE,
            lambda value: bool(value),
            timeout=30,
            alive=lambda: _check_alive(processes, logs),
        )
        if message is None:
            self._warn(f"Alloy does not show the refusal of {error['title']!r} yet; see the worker log in {logs}/")
            return
        status = alloy_shows(url, error["item_id"], fake_alloy.SAMPLE_STATUS_ATTRIBUTE)
        self.stdout.write(f"Alloy now shows on {error['title']!r} (written back by the worker): status {status}")
        self.stdout.write(f"  message: {message}")

    def _show_state_in_alloy(
        self, url: str, run: JobRun, processes: list[subprocess.Popen[bytes]], logs: Path, timeout: float
    ) -> None:
        """What Alloy now shows on the sample job's item after its run."""
        status = wait_for_alloy(
            url,
            EVERY_MINUTE_ITEM,
            fake_alloy.SAMPLE_STATUS_ATTRIBUTE,
            lambda value: value == run.status,
            timeout=min(timeout, 60),
            alive=lambda: _check_alive(processes, logs),
        )
        if status is None:
            self._warn(f"Alloy does not show run {run.pk}'s outcome yet; see the worker log in {logs}/")
            return
        message = wait_for_alloy(
            url, EVERY_MINUTE_ITEM, fake_alloy.SAMPLE_MESSAGE_ATTRIBUTE, bool, timeout=5, alive=lambda: None
        )
        last_run = wait_for_alloy(
            url, EVERY_MINUTE_ITEM, fake_alloy.SAMPLE_LAST_RUN_ATTRIBUTE, bool, timeout=5, alive=lambda: None
        )
        self.stdout.write(self.style.SUCCESS(f"Alloy now shows on {run.job.name!r}: status {status}"))
        self.stdout.write(f"  message: {message}")
        self.stdout.write(f"  last run: {last_run}")

    def _wait_while_running(self, processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
        while True:
            _check_alive(processes, logs)
            time.sleep(1)


def _spawn(command: list[str], log_path: Path, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    # Own process group: the terminal's Ctrl-C reaches only this command, which stops them in order.
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            command,
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]  # an IPv4 address is (host, port)
        return port


def _check_alive(processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    for process in processes:
        if process.poll() is not None:
            raise CommandError(f"{_command_words(process)} exited with status {process.returncode}; see {logs}/")


def _command_words(process: subprocess.Popen[bytes]) -> str:
    """The words that name a child (``manage.py fake_alloy --port``, ``-m celery -A``)."""
    command = process.args
    # Popen also takes a single string or path; _spawn always passes a list of strings.
    if not isinstance(command, list):
        raise TypeError(f"expected the argument list _spawn starts children with, got {command!r}")
    return " ".join(os.fsdecode(word) for word in command[1:4])


@contextmanager
def _children() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield processes
    finally:
        _stop(processes)


def _stop_on_signals() -> None:
    """Ctrl-C, and a SIGTERM from a process manager, both end the demo the same clean way.

    Set explicitly: a shell that starts this in the background would otherwise leave SIGINT ignored.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
