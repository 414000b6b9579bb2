"""Fixtures shared by every test folder: job factories, real Celery processes, a fake Alloy."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alloysync.fake_alloy import FakeAlloyServer, sample_alloy_settings
from config import celery_app
from scheduler.jobspec import job_spec_build
from scheduler.models import Job
from tests.helpers import ALLOY_TEST_KEY, CeleryProcesses, broker_queue_delete


@pytest.fixture
def make_job(db: None) -> Callable[..., Job]:
    """Create a scheduled job through the same service the admin and the sync use."""
    from scheduler.services import job_create

    def make(
        name: str = "nightly report",
        cron: str = "30 2 * * *",
        timezone: str = "UTC",
        steps: str | list[Any] = 'examples.echo {"message": "hi"}',
        source: str = Job.Source.LOCAL,
        external_id: str = "",
    ) -> Job:
        spec = job_spec_build(name=name, cron=cron, timezone=timezone, steps=steps)
        return job_create(spec=spec, source=source, external_id=external_id)

    return make


@pytest.fixture
def celery_processes(transactional_db: None, tmp_path: Path) -> Iterator[CeleryProcesses]:
    queue = f"alloysync-test-{uuid.uuid4().hex[:8]}"
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    processes = CeleryProcesses(tmp_path, queue)
    try:
        yield processes
    finally:
        processes.stop_all()
        celery_app.conf.task_default_queue = previous_queue
        broker_queue_delete(celery_app, queue)


@pytest.fixture
def alloy_env() -> Iterator[tuple[FakeAlloyServer, dict[str, str]]]:
    """A fake Alloy in this process, and the ALLOY_* environment for child processes to use it."""
    with FakeAlloyServer(api_key=ALLOY_TEST_KEY) as server:
        yield server, {**sample_alloy_settings(server.url, ALLOY_TEST_KEY), "ALLOY_SYNC_INTERVAL": "5"}
