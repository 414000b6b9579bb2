"""A fake Alloy: the subset of Alloy's REST API that alloysync uses, served on a real loopback socket.

Tests, benchmarks and the demo talk to it instead of Alloy (which nothing here can reach). It follows
``docs/alloy-api.md``: Bearer auth, AQS queries with 1-based pages refused beyond 100 (filters and
sort on ``lastEditDate``, kept per item but never returned), the statistics count, item read, edit
with signature checks and hard delete, the optional item log, Alloy's error body, and rate-limit
headers per endpoint per minute (enforced with ``rate_limit``). A ``Workflow`` calls a webhook on
item changes, as an Alloy workflow's Http Request action does. ``server.faults`` injects latency,
5xx, 429, hangs and malformed or broken-off pages while it runs.

Plain standard library (no Django, no Celery). It never listens beyond loopback.

- ``samples``: the sample design's codes and items, and items in Alloy's JSON shape.
- ``aqs``: the AQS interpreter.
- ``faults``: ``Faults``, what to inject.
- ``timestamps``: Alloy's timestamps, written and read.
- ``store``: the items, their edit times and log, and the answers computed from them.
- ``ratelimit``: requests counted per endpoint per minute; ``endpoint_key``.
- ``workflow``: ``Workflow``, the webhook calls made on item changes.
- ``server``: ``FakeAlloyServer``; ``handler``: its HTTP side.
- ``cli``: the command line (``python -m alloysync.fake_alloy``, ``manage.py fake_alloy``).
"""

from alloysync.fake_alloy.aqs import ApiError
from alloysync.fake_alloy.cli import DEFAULT_PORT, add_arguments, main, serve
from alloysync.fake_alloy.faults import Faults
from alloysync.fake_alloy.ratelimit import RATE_LIMIT_PER_MINUTE, RateState, endpoint_key
from alloysync.fake_alloy.samples import (
    DEMO_API_KEY,
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_DESIGN_CODE,
    SAMPLE_FLAG_ATTRIBUTE,
    SAMPLE_ITEMS_PATH,
    SAMPLE_LAST_RUN_ATTRIBUTE,
    SAMPLE_MESSAGE_ATTRIBUTE,
    SAMPLE_NEXT_RUN_ATTRIBUTE,
    SAMPLE_RUN_NOW_ATTRIBUTE,
    SAMPLE_STATUS_ATTRIBUTE,
    SAMPLE_STEPS_ATTRIBUTE,
    SAMPLE_TIMEZONE_ATTRIBUTE,
    TITLE_ATTRIBUTE,
    load_items,
    make_item,
    new_hex_id,
    sample_alloy_settings,
    sample_write_back_settings,
)
from alloysync.fake_alloy.server import FakeAlloyServer, RequestRecord
from alloysync.fake_alloy.store import ItemEdit, ItemEvent, ItemStore
from alloysync.fake_alloy.timestamps import format_alloy_timestamp, parse_alloy_datetime
from alloysync.fake_alloy.workflow import WORKFLOW_BODIES, Workflow, WorkflowCall

__all__ = [
    "DEFAULT_PORT",
    "DEMO_API_KEY",
    "RATE_LIMIT_PER_MINUTE",
    "SAMPLE_CRON_ATTRIBUTE",
    "SAMPLE_DESIGN_CODE",
    "SAMPLE_FLAG_ATTRIBUTE",
    "SAMPLE_ITEMS_PATH",
    "SAMPLE_LAST_RUN_ATTRIBUTE",
    "SAMPLE_MESSAGE_ATTRIBUTE",
    "SAMPLE_NEXT_RUN_ATTRIBUTE",
    "SAMPLE_RUN_NOW_ATTRIBUTE",
    "SAMPLE_STATUS_ATTRIBUTE",
    "SAMPLE_STEPS_ATTRIBUTE",
    "SAMPLE_TIMEZONE_ATTRIBUTE",
    "TITLE_ATTRIBUTE",
    "WORKFLOW_BODIES",
    "ApiError",
    "FakeAlloyServer",
    "Faults",
    "ItemEdit",
    "ItemEvent",
    "ItemStore",
    "RateState",
    "RequestRecord",
    "Workflow",
    "WorkflowCall",
    "add_arguments",
    "endpoint_key",
    "format_alloy_timestamp",
    "load_items",
    "main",
    "make_item",
    "new_hex_id",
    "parse_alloy_datetime",
    "sample_alloy_settings",
    "sample_write_back_settings",
    "serve",
]
