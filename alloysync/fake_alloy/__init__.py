"""A fake Alloy: the subset of Alloy's REST API that alloysync uses, served on a real loopback socket.

Tests, benchmarks and the demo talk to it instead of Alloy (which nothing here can reach). It follows
``docs/alloy-api.md``: Bearer auth, AQS queries with 1-based pages refused beyond 100, the
statistics count, item read and edit with signature checks, Alloy's error body, and rate-limit
headers. ``server.faults`` injects latency, 5xx, 429, hangs and malformed or broken-off pages while
it runs.

Plain standard library (no Django, no Celery). It never listens beyond loopback.

- ``samples``: the sample design's codes and items, and items in Alloy's JSON shape.
- ``aqs``: the AQS interpreter.
- ``faults``: ``Faults``, what to inject.
- ``store``: the items and the answers computed from them.
- ``server``: ``FakeAlloyServer``; ``handler``: its HTTP side.
- ``cli``: the command line (``python -m alloysync.fake_alloy``, ``manage.py fake_alloy``).
"""

from alloysync.fake_alloy.aqs import ApiError
from alloysync.fake_alloy.cli import DEFAULT_PORT, add_arguments, main, serve
from alloysync.fake_alloy.faults import Faults
from alloysync.fake_alloy.handler import format_alloy_timestamp
from alloysync.fake_alloy.samples import (
    DEMO_API_KEY,
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_DESIGN_CODE,
    SAMPLE_FLAG_ATTRIBUTE,
    SAMPLE_ITEMS_PATH,
    SAMPLE_STEPS_ATTRIBUTE,
    SAMPLE_TIMEZONE_ATTRIBUTE,
    TITLE_ATTRIBUTE,
    load_items,
    make_item,
    new_hex_id,
    sample_alloy_settings,
)
from alloysync.fake_alloy.server import FakeAlloyServer, RequestRecord

__all__ = [
    "DEFAULT_PORT",
    "DEMO_API_KEY",
    "SAMPLE_CRON_ATTRIBUTE",
    "SAMPLE_DESIGN_CODE",
    "SAMPLE_FLAG_ATTRIBUTE",
    "SAMPLE_ITEMS_PATH",
    "SAMPLE_STEPS_ATTRIBUTE",
    "SAMPLE_TIMEZONE_ATTRIBUTE",
    "TITLE_ATTRIBUTE",
    "ApiError",
    "FakeAlloyServer",
    "Faults",
    "RequestRecord",
    "add_arguments",
    "format_alloy_timestamp",
    "load_items",
    "main",
    "make_item",
    "new_hex_id",
    "sample_alloy_settings",
    "serve",
]
