"""Helpers for the alloysync tests: the fake Alloy's key, job items on the sample design, the sample items."""

from __future__ import annotations

from typing import Any

from alloysync.fake_alloy import (
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_FLAG_ATTRIBUTE,
    SAMPLE_ITEMS_PATH,
    SAMPLE_STEPS_ATTRIBUTE,
    SAMPLE_TIMEZONE_ATTRIBUTE,
    TITLE_ATTRIBUTE,
    load_items,
    make_item,
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


def sample_items() -> list[dict[str, Any]]:
    """The bundled sample items, freshly read."""
    return load_items(SAMPLE_ITEMS_PATH)
