"""Fixtures for beat's tests: a movable monotonic clock, a recording producer, a started beat."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import pytest

from config import celery_app
from scheduler.beat import JobScheduler
from tests.scheduler.beat.helpers import FakeClock, Sent


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """What beat sends, recorded as (task, args, kwargs) instead of going to a broker."""
    messages: Sent = []

    def send_task(name: str, args: list[Any], kwargs: dict[str, Any], **options: Any) -> None:
        messages.append((name, args, kwargs))

    monkeypatch.setattr(celery_app, "producer_or_acquire", lambda producer=None: nullcontext(producer))
    monkeypatch.setattr(celery_app, "send_task", send_task)
    return messages


@pytest.fixture
def beat(clock: FakeClock, sent: Sent) -> Iterator[JobScheduler]:
    """A started beat: constructed as ``celery beat`` does, first tick done, holding the lease."""
    scheduler = JobScheduler(app=celery_app, clock=clock, max_interval=5)
    scheduler.tick()
    assert scheduler.is_leader
    yield scheduler
    scheduler.close()
