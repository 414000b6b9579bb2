"""``manage.py demo``: the whole engine on the embedded defaults, for a first look.

Migrates, creates an admin login, schedules a demo job every minute, then starts a Celery worker,
beat and the admin web server as child processes, and prints the first scheduled run with its steps.
Ctrl-C stops every process it started.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scheduler.jobspec import job_spec_build
from scheduler.models import Job, JobRun
from scheduler.services import job_resume, job_save

DEMO_JOB_NAME = "demo: hello every minute"
DEMO_STEPS = """
examples.echo {"message": "hello from the demo job"}
examples.sleep {"seconds": 1}
examples.echo {"message": "done"}
"""


class Command(BaseCommand):
    help = "Run the worker, beat and admin on the embedded defaults and show a scheduled job's run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="admin web server port (127.0.0.1 only)")
        parser.add_argument("--once", action="store_true", help="stop after the first scheduled run is shown")
        parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for the first run")

    def handle(self, *args: Any, port: int, once: bool, timeout: float, **options: Any) -> None:
        _stop_on_signals()
        call_command("migrate", verbosity=0)
        password = self._admin_password()
        job = self._demo_job()
        started_at = timezone.now()
        processes = self._start_processes(port)
        try:
            self.stdout.write(f"Admin: http://127.0.0.1:{port}/admin/  user: admin  password: {password}")
            self.stdout.write(f"Scheduled {job.name!r} ({job.cron}); waiting for beat to send it...")
            run = self._wait_for_run(job, started_at, processes, timeout)
            self._show_run(run)
            if not once:
                self.stdout.write("Running; press Ctrl-C to stop.")
                while all(process.poll() is None for process in processes):
                    time.sleep(1)
                raise CommandError("a demo process stopped unexpectedly; see its output above")
        except KeyboardInterrupt:
            self.stdout.write("Stopping...")
        finally:
            _stop(processes)
        self.stdout.write("Stopped.")

    def _admin_password(self) -> str:
        users = get_user_model().objects
        password = secrets.token_urlsafe(12)
        user = users.filter(username="admin").first() or users.create_superuser("admin", "admin@localhost")
        user.set_password(password)
        user.save()
        return password

    def _demo_job(self) -> Job:
        spec = job_spec_build(name=DEMO_JOB_NAME, cron="* * * * *", timezone="UTC", steps=DEMO_STEPS)
        job = Job.objects.filter(name=DEMO_JOB_NAME, source=Job.Source.LOCAL).first() or Job()
        job = job_save(job=job, spec=spec)
        if job.is_paused:
            job_resume(job=job)
        return job

    def _start_processes(self, port: int) -> list[subprocess.Popen[bytes]]:
        base = Path(settings.BASE_DIR)
        celery = [sys.executable, "-m", "celery", "-A", "scheduler"]
        commands = [
            [*celery, "worker", "--loglevel=INFO", "--concurrency=2"],
            [*celery, "beat", "--loglevel=INFO", "--pidfile=", "-s", str(settings.VAR_DIR / "beat-schedule")],
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        ]
        # Children get their own process group so the terminal's Ctrl-C reaches only this command,
        # which then stops them in order.
        return [subprocess.Popen(command, cwd=base, start_new_session=True) for command in commands]  # noqa: S603

    def _wait_for_run(self, job: Job, since: Any, processes: list[subprocess.Popen[bytes]], timeout: float) -> JobRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = (
                JobRun.objects.filter(job=job, trigger=JobRun.Trigger.SCHEDULE, created_at__gte=since)
                .exclude(finished_at=None)
                .first()
            )
            if run:
                return run
            if any(process.poll() is not None for process in processes):
                raise CommandError("a demo process exited before the first run; see its output above")
            time.sleep(1)
        raise CommandError(f"no scheduled run within {timeout:g} s; see the worker and beat output above")

    def _show_run(self, run: JobRun) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"Run {run.pk} of {run.job.name!r}: {run.status} (trigger: {run.trigger})")
        )
        for step in run.steps.order_by("position"):
            self.stdout.write(f"  step {step.position} {step.function} {step.kwargs}: {step.status} -> {step.result!r}")


def _stop_on_signals() -> None:
    """Ctrl-C, and a SIGTERM from a process manager, both end the demo the same clean way.

    Set explicitly: a shell that starts this in the background would otherwise leave SIGINT ignored.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
