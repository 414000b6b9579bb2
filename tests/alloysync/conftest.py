"""Fixtures for sync tests: a fake Alloy over a real socket, and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from alloysync import fake_alloy
from alloysync.client import AlloyClient
from alloysync.fake_alloy import (
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_FLAG_ATTRIBUTE,
    SAMPLE_STEPS_ATTRIBUTE,
    SAMPLE_TIMEZONE_ATTRIBUTE,
    TITLE_ATTRIBUTE,
    FakeAlloyServer,
    make_item,
    sample_alloy_settings,
)

API_KEY = "3f6a1c2e-8b4d-4e7f-9a0b-1c2d3e4f5a6b"


def job_item(
    title: str = "Nightly gully report",
    cron: str | None = "30 2 * * *",
    steps: Any = 'examples.echo {"message": "gullies"}',
    timezone: str | None = None,
    *,
    flagged: bool = True,
    n: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An Alloy item on the sample design; ``n`` gives a predictable, sortable id."""
    attributes = {
        TITLE_ATTRIBUTE: title,
        SAMPLE_CRON_ATTRIBUTE: cron,
        SAMPLE_STEPS_ATTRIBUTE: steps,
        SAMPLE_TIMEZONE_ATTRIBUTE: timezone,
        SAMPLE_FLAG_ATTRIBUTE: flagged,
        **extra,
    }
    return make_item(attributes, item_id=f"{n:024x}" if n is not None else None)


@pytest.fixture
def alloy(settings) -> Iterator[FakeAlloyServer]:
    """A running fake Alloy, with Django's ALLOY_* settings pointing at it."""
    with FakeAlloyServer(api_key=API_KEY) as server:
        for name, value in sample_alloy_settings(server.url, API_KEY).items():
            setattr(settings, name, value)
        settings.ALLOY_PAGE_SIZE = 100
        settings.ALLOY_TIMEOUT = 2
        yield server


@pytest.fixture
def fast_client(alloy) -> Iterator[AlloyClient]:
    """A client on the fake whose retry waits are recorded instead of slept."""
    waits: list[float] = []
    with AlloyClient(alloy.url, API_KEY, timeout=1, page_size=100, max_retry_seconds=30, sleep=waits.append) as client:
        client.waits = waits  # type: ignore[attr-defined]
        yield client


def sample_items() -> list[dict[str, Any]]:
    return fake_alloy.load_items(fake_alloy.SAMPLE_ITEMS_PATH)
