"""What the Alloy both-ways benchmark's parts share: job items, a fake Alloy holding them, the settings
that point alloysync at it (in this process, or as the environment of a child process), and figures.

Imported by ``alloy_both_ways_bench.py`` after ``django.setup()``; not a benchmark of its own.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from alloysync import fake_alloy
from alloysync.fake_alloy.store import utc_now
from config.env_secrets import Secret

API_KEY = "b0b0b0b0-1111-4222-8333-444455556666"
ZONES = ("UTC", "Europe/London")
CRONS = [f"{minute} {hour} * * *" for hour in range(0, 24, 3) for minute in range(0, 60, 5)][:100]
# The items were last edited this long ago: outside any incremental sync's look-back.
ITEMS_AGE = timedelta(hours=2)


def item_id(n: int) -> str:
    return f"{n + 1:024x}"


def make_items(count: int, crons: Sequence[str] = CRONS) -> list[dict[str, Any]]:
    items = []
    for n in range(count):
        attributes = {
            fake_alloy.TITLE_ATTRIBUTE: f"Job {n}",
            fake_alloy.SAMPLE_CRON_ATTRIBUTE: crons[n % len(crons)],
            fake_alloy.SAMPLE_STEPS_ATTRIBUTE: f'examples.echo {{"message": "job {n}"}}',
            fake_alloy.SAMPLE_TIMEZONE_ATTRIBUTE: ZONES[(n // len(crons)) % len(ZONES)],
            fake_alloy.SAMPLE_FLAG_ATTRIBUTE: True,
        }
        items.append(fake_alloy.make_item(attributes, item_id=item_id(n)))
    return items


def start_fake(count: int, rate_limit: int, crons: Sequence[str] = CRONS, **options: Any) -> fake_alloy.FakeAlloyServer:
    """A fake Alloy on a loopback port holding ``count`` job items, last edited ``ITEMS_AGE`` ago."""
    long_ago = datetime.now(UTC) - ITEMS_AGE
    server = fake_alloy.FakeAlloyServer(
        make_items(count, crons), api_key=API_KEY, rate_limit=rate_limit, clock=lambda: long_ago, **options
    )
    server.clock = utc_now  # edits from now on happen now
    return server.start()


def configure(url: str, page_size: int) -> None:
    """Point the sync at the fake, as config/settings.py would from the environment."""
    for name, value in fake_alloy.sample_alloy_settings(url, API_KEY).items():
        setattr(settings, name, value)
    settings.ALLOY_API_KEY = Secret(API_KEY)  # as config/settings.py holds it
    settings.ALLOY_PAGE_SIZE = page_size
    settings.ALLOY_MAX_REMOVAL_FRACTION = 1


def child_environment(url: str, page_size: int) -> dict[str, str]:
    """The same settings as environment variables, for a server or worker process."""
    db = settings.DATABASES["default"]
    credentials = f"{db['USER']}@" if db.get("USER") else ""
    database_url = f"postgres://{credentials}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return {
        **fake_alloy.sample_alloy_settings(url, API_KEY),
        "DATABASE_URL": database_url,
        "ALLOY_ALLOW_PLAIN_HTTP": "true",
        "ALLOY_PAGE_SIZE": str(page_size),
        "ALLOY_MAX_REMOVAL_FRACTION": "1",
        "LOG_LEVEL": "WARNING",
    }


def rate_limited_total(server: fake_alloy.FakeAlloyServer) -> int:
    return sum(server.rate_limited.values())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def spread(values: Sequence[float]) -> str:
    """p50, p95 and max of ``values`` (seconds), or "none"."""
    if not values:
        return "none"
    return f"p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s, max {max(values):.2f} s"
