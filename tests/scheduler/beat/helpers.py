"""Helpers for beat's tests: a fixed "now", picking up changes and claiming at it, a movable clock."""

from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.beat.claim import Claim, schedule_claim_due
from scheduler.beat.pickup import schedule_pick_up_changes
from scheduler.models import Job, ScheduleState

NOW = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
STEPS = 'examples.echo {"message": "x"}'


def pick_up(now: datetime = NOW, since: datetime | None = None) -> tuple[int, datetime | None]:
    return schedule_pick_up_changes(since=since, now=now)


def claim(now: datetime = NOW, window: timedelta = HOUR) -> Claim:
    return schedule_claim_due(now=now, horizon=now + timedelta(seconds=5), catchup_window=window)


def due_of(job: Job) -> datetime | None:
    return ScheduleState.objects.get(periodic_task_id=job.periodic_task_id).next_due_at


Sent = list[tuple[str, list[Any], dict[str, Any]]]


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.seconds = 10_000.0  # like time.monotonic(), far from 0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
