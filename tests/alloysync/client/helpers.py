"""Helpers for the Alloy client's tests: the key, queries, numbered items and fake transports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from alloysync.client import AlloyClient, ItemQuery
from alloysync.fake_alloy import SAMPLE_DESIGN_CODE, SAMPLE_FLAG_ATTRIBUTE, TITLE_ATTRIBUTE, FakeAlloyServer, make_item

API_KEY = "5b1e0c7a-3f2d-4c8e-9a61-0d2f4e6b8c10"
ALL_JOBS = ItemQuery(SAMPLE_DESIGN_CODE)
FLAGGED_JOBS = ItemQuery(SAMPLE_DESIGN_CODE, flag_attribute=SAMPLE_FLAG_ATTRIBUTE)
UNFLAGGED_SAMPLE_ID = "65f0c1a0e4d0a1b2c3d4e50d"
#: The instant pacing tests start from: a ``Clock``'s time until it is moved.
NOW = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand: calling it gives the time, ``advance`` moves it on."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def numbered_items(count: int, *, flagged: bool = True, offset: int = 0) -> list[dict[str, Any]]:
    """Items whose ids sort in creation order (``000...0001``, ``000...0002``...)."""
    return [
        make_item(
            {TITLE_ATTRIBUTE: f"job {n}", SAMPLE_FLAG_ATTRIBUTE: flagged},
            item_id=f"{n:024x}",
        )
        for n in range(offset + 1, offset + count + 1)
    ]


def query_pages(server: FakeAlloyServer) -> list[int | None]:
    return [page for method, path, page in server.requests if path == "/api/aqs/query"]


def mock_client(handler: Any, sleeps: list[float], **kwargs: Any) -> AlloyClient:
    transport = httpx.MockTransport(handler)
    return AlloyClient("https://api.uk.alloyapp.io", API_KEY, transport=transport, sleep=sleeps.append, **kwargs)


def error_body(status: int, category: str, message: str) -> dict[str, Any]:
    return {
        "category": category,
        "errorCode": "1657279454",
        "errorData": None,
        "httpStatusCode": status,
        "message": message,
    }
