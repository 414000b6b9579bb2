"""The Alloy side's metrics for ``/metrics``: syncs, requests to Alloy, the write-back backlog and the
last successful sync; counted into the database (``scheduler.metrics.counters_add``) like the runs.

Requests to Alloy are many and fast, so each process tallies them in memory (``alloy_response_tally``,
the client's ``on_response``) and adds the tally to the database when its client closes: at the end
of each sync, write-back pass and webhook read, whether it succeeded or not. A database that refuses
the tally never fails the sync: the tally is kept for the next flush, and the trouble logged once.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models.functions import Now
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alloysync.client import AlloyClient
from alloysync.models import ItemState, SyncRun
from scheduler.metrics import CounterAdd, counter_family, counters_add, counters_read, labels_text

logger = logging.getLogger(__name__)

SYNCS = "alloysync_syncs_total"
ALLOY_REQUESTS = "alloysync_alloy_requests_total"
ALLOY_RATE_LIMITED = "alloysync_alloy_rate_limited_total"
WRITE_BACK_BACKLOG = "alloysync_write_back_backlog"
LAST_SUCCESSFUL_SYNC = "alloysync_last_successful_sync_timestamp_seconds"
SECONDS_SINCE_SUCCESSFUL_SYNC = "alloysync_seconds_since_last_successful_sync"

_RATE_LIMITED = "429"

# This process's requests to Alloy not yet in the database: (endpoint, status) -> count.
_tally: Counter[tuple[str, str]] = Counter()
_tally_lock = threading.Lock()
_flush_failed_logged = False


def alloy_response_tally(endpoint: str, status: str) -> None:
    """Count one request to Alloy (the client's ``on_response``): in memory, until the next flush."""
    with _tally_lock:
        _tally[endpoint, status] += 1


def alloy_requests_flush() -> None:
    """Add this process's tally of requests to Alloy to the database. Never raises: if the database
    refuses, the tally is kept for the next flush and the first such failure logged."""
    global _flush_failed_logged
    with _tally_lock:
        pending = dict(_tally)
        _tally.clear()
    if not pending:
        return
    try:
        with transaction.atomic():  # a savepoint inside a caller's transaction: its failure spoils nothing
            counters_add(_request_counts(pending))
    except DatabaseError:
        with _tally_lock:
            _tally.update(pending)
        if not _flush_failed_logged:
            _flush_failed_logged = True
            logger.exception("requests to Alloy could not be counted into the metrics; kept for the next try")


def _request_counts(pending: dict[tuple[str, str], int]) -> list[CounterAdd]:
    counts = []
    for (endpoint, status), count in pending.items():
        counts.append(CounterAdd(ALLOY_REQUESTS, labels_text({"endpoint": endpoint, "status": status}), count))
        if status == _RATE_LIMITED:
            counts.append(CounterAdd(ALLOY_RATE_LIMITED, labels_text({"endpoint": endpoint}), count))
    return counts


class CountedAlloyClient(AlloyClient):
    """An ``AlloyClient`` whose requests are counted for ``/metrics``, the tally flushed when it closes
    (a ``with`` block's end, whatever ended it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, on_response=alloy_response_tally, **kwargs)

    def close(self) -> None:
        try:
            super().close()
        finally:
            alloy_requests_flush()


def sync_counted(*, mode: str, status: str) -> None:
    """Count a sync that ended (succeeded, failed or refused). Call it in the transaction that records
    the end. Raises what the database raises."""
    counters_add([CounterAdd(SYNCS, labels_text({"mode": mode, "outcome": status}))])


def last_successful_sync() -> tuple[float, float] | None:
    """The last successful sync's end (Unix seconds) and the seconds since, by the database's clock;
    None if no sync has succeeded. One query, by the (status, -finished_at) index."""
    row = (
        SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED, finished_at__isnull=False)
        .order_by("-finished_at")
        .annotate(now=Now())
        .values_list("finished_at", "now")
        .first()
    )
    finished_at, now = row if row is not None else (None, None)
    if finished_at is None or now is None:
        return None
    return finished_at.timestamp(), max(0.0, (now - finished_at).total_seconds())


class AlloyCollector(Collector):
    """Syncs by mode and outcome, requests to Alloy and 429s by endpoint, the write-back backlog and
    the last successful sync. Three queries a scrape, whatever the number of items and syncs.

    The two last-sync gauges are absent until a sync has succeeded (Prometheus' convention for "no
    value"): alert on ``absent(...)`` as well as on a large value.
    """

    def collect(self) -> Iterator[Metric]:
        stored = counters_read([SYNCS, ALLOY_REQUESTS, ALLOY_RATE_LIMITED])
        yield counter_family(SYNCS, "Alloy syncs ended, by mode and outcome.", ("mode", "outcome"), stored[SYNCS])
        yield counter_family(
            ALLOY_REQUESTS,
            'Requests to Alloy, retries included, by path template and HTTP status ("error": no answer).',
            ("endpoint", "status"),
            stored[ALLOY_REQUESTS],
        )
        yield counter_family(
            ALLOY_RATE_LIMITED,
            "Requests to Alloy answered 429 (rate limited), by path template.",
            ("endpoint",),
            stored[ALLOY_RATE_LIMITED],
        )
        backlog = ItemState.objects.filter(dirty_since__isnull=False).count()  # the itemstate_dirty index
        yield GaugeMetricFamily(
            WRITE_BACK_BACKLOG, "Alloy items whose job state in Alloy is out of date (to be written).", value=backlog
        )
        last = last_successful_sync()
        if last is not None:
            yield GaugeMetricFamily(
                LAST_SUCCESSFUL_SYNC, "When the last successful sync ended (Unix time).", value=last[0]
            )
            yield GaugeMetricFamily(
                SECONDS_SINCE_SUCCESSFUL_SYNC,
                "Seconds since the last successful sync ended, by the database's clock.",
                value=last[1],
            )
