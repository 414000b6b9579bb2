"""The Alloy HTTP client: the only code in alloysync that speaks HTTP.

Plain Python (no Django, no Celery), so it can be used from tasks, commands, benchmarks and tests
alike. It turns Alloy's wire format into ``AlloyItem`` values and every failure into an ``AlloyError``
that says whether a retry can help; ``httpx`` and JSON exceptions never leave this package.

Retries happen here and only here (tenacity), for transient faults: timeouts, transport errors, 5xx
and 429. Waits honour ``Retry-After``, then Alloy's ``X-Rate-Limit-Reset``, then back off
exponentially with jitter; each wait and the total time spent retrying are capped, and no hint can
make a wait shorter than the back-off's first. Each request has one deadline for all of it, and
each answer is read and parsed within bounds, so no answer can hang or exhaust the caller.

- ``errors``: ``AlloyError`` and its subclasses, and how a failed answer becomes one.
- ``items``: ``AlloyItem`` and ``parse_item``.
- ``aqs``: ``ItemQuery`` (collections, flag, edit time) and the AQS bodies built from it.
- ``policy``: the rate-limit and retry policy.
- ``pacing``: slowing down before Alloy answers 429: the ``Pacer`` protocol and ``LocalPacer``.
- ``answers``: reading an answer within bounds (size once decompressed, JSON depth and numbers).
- ``transport``: the HTTP transport whose every network operation respects the request's deadline.
- ``reach``: the client's settings checked, and why a connection failed.
- ``client``: ``AlloyClient``, the calls themselves.

What we know of the API (and what is only assumed) is in ``docs/alloy-api.md``.
"""

from alloysync.client.answers import MAX_ANSWER_BYTES, MAX_JSON_DEPTH
from alloysync.client.aqs import ItemQuery, alloy_datetime, build_count_aqs, build_query_aqs
from alloysync.client.client import MAX_PAGE, AlloyClient, item_not_found
from alloysync.client.errors import (
    AlloyAuthError,
    AlloyError,
    AlloyRequestError,
    AlloyResponseError,
    AlloyUnavailableError,
    AlloyUnreachableError,
)
from alloysync.client.items import AlloyItem, parse_item
from alloysync.client.pacing import (
    MAX_PACING_WAIT_SECONDS,
    LocalPacer,
    Pacer,
    PacingPolicy,
    endpoint_key,
    read_rate_limit,
)
from alloysync.client.policy import (
    BACKOFF_INITIAL_SECONDS,
    BACKOFF_JITTER_SECONDS,
    MAX_WAIT_SECONDS,
    MIN_WAIT_SECONDS,
    UNREACHED_RETRY_SECONDS,
    parse_alloy_timestamp,
    rate_limit_wait,
    retry_hint,
)

__all__ = [
    "BACKOFF_INITIAL_SECONDS",
    "BACKOFF_JITTER_SECONDS",
    "MAX_ANSWER_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_PACING_WAIT_SECONDS",
    "MAX_PAGE",
    "MAX_WAIT_SECONDS",
    "MIN_WAIT_SECONDS",
    "UNREACHED_RETRY_SECONDS",
    "AlloyAuthError",
    "AlloyClient",
    "AlloyError",
    "AlloyItem",
    "AlloyRequestError",
    "AlloyResponseError",
    "AlloyUnavailableError",
    "AlloyUnreachableError",
    "ItemQuery",
    "LocalPacer",
    "Pacer",
    "PacingPolicy",
    "alloy_datetime",
    "build_count_aqs",
    "build_query_aqs",
    "endpoint_key",
    "item_not_found",
    "parse_alloy_timestamp",
    "parse_item",
    "rate_limit_wait",
    "read_rate_limit",
    "retry_hint",
]
