"""Alloy's health checks: whether Alloy answers, and how long since the last successful sync.

``alloy_check`` asks Alloy for the key's session, which costs one request of Alloy's rate limit;
load balancers and monitors may poll /healthz every few seconds, so its result is reused for
``ALLOY_CHECK_TTL`` seconds. Like every check, its messages never carry the key or a URL.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from alloysync.client import AlloyAuthError, AlloyClient, AlloyError, AlloyRequestError, AlloyUnavailableError
from alloysync.models import SyncRun
from alloysync.sync_lease import SYNC_LEASE
from scheduler.health import Check
from scheduler.models import Lease

# Seconds an answer from Alloy is reused: at most one request a minute per process, whatever the polling.
ALLOY_CHECK_TTL = 60.0
# Seconds the check waits for Alloy: a health check must answer well within a load balancer's timeout.
ALLOY_CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class _CachedCheck:
    settings: tuple[str, str]  # (base URL, key) the check was made with: other settings ask again
    expires: float  # time.monotonic() after which Alloy is asked again
    check: Check


_alloy_lock = threading.Lock()
_alloy_cached: _CachedCheck | None = None


def alloy_check() -> Check:
    """Whether Alloy answers an authenticated call with ALLOY_API_KEY; ok when Alloy is not configured.

    Asks Alloy at most once every ``ALLOY_CHECK_TTL`` seconds per process (a failure is reused too,
    so a struggling Alloy is not polled harder), waiting at most ``ALLOY_CHECK_TIMEOUT`` seconds and
    never retrying.
    """
    global _alloy_cached
    key = settings.ALLOY_API_KEY  # a config.env_secrets.Secret: its value only goes to the client
    if not (key and settings.ALLOY_JOB_DESIGN):
        return Check(True, "Alloy not configured (ALLOY_API_KEY, ALLOY_JOB_DESIGN)")
    asked_with = (settings.ALLOY_BASE_URL, key.reveal())
    # One thread asks while the others wait for its answer, rather than all asking at once.
    with _alloy_lock:
        cached = _alloy_cached
        if cached is None or cached.settings != asked_with or time.monotonic() >= cached.expires:
            check = _ask_alloy(*asked_with)
            cached = _alloy_cached = _CachedCheck(asked_with, time.monotonic() + ALLOY_CHECK_TTL, check)
    return cached.check


def _ask_alloy(base_url: str, api_key: str) -> Check:
    try:
        # max_retry_seconds=0: one attempt. A health check reports; the sync is what retries.
        with AlloyClient(base_url, api_key, timeout=ALLOY_CHECK_TIMEOUT, max_retry_seconds=0) as client:
            client.session_me()
    except AlloyError as exc:
        return Check(False, _alloy_failure(exc))
    return Check(True, "Alloy answers")


def _alloy_failure(error: AlloyError) -> str:
    # Built from the error's class and fields, never its message: messages may quote the base URL
    # or a redirect's target, and /healthz is open to anyone who can reach it.
    if isinstance(error, AlloyAuthError):
        what = "Alloy refused the key: check ALLOY_API_KEY"
    elif isinstance(error, AlloyUnavailableError):
        what = f"Alloy did not answer within {ALLOY_CHECK_TIMEOUT:g} s, or failed"
    elif isinstance(error, AlloyRequestError):
        what = "Alloy rejected the call: check ALLOY_BASE_URL"
    else:
        what = "Alloy's answer was not what alloysync expects: check ALLOY_BASE_URL"
    status = f", HTTP {error.status_code}" if error.status_code is not None else ""
    return f"{what} ({type(error).__name__}{status})"


def alloy_configured() -> bool:
    """Whether this deployment syncs from Alloy at all: without a key and a design it only runs local
    jobs, and the scheduled sync's failures say nothing anyone must act on."""
    return bool(settings.ALLOY_API_KEY and settings.ALLOY_JOB_DESIGN)


def sync_check() -> Check:
    """Whether a sync succeeded within ``sync_stale_after()`` seconds; ok when Alloy is not configured."""
    if not alloy_configured():
        return Check(True, "Alloy sync not configured (ALLOY_API_KEY, ALLOY_JOB_DESIGN)")
    # A webhook's read of a few items says nothing of whether polling works: only full and incremental syncs count.
    polled = SyncRun.objects.filter(
        status=SyncRun.Status.SUCCEEDED, mode__in=[SyncRun.Mode.FULL, SyncRun.Mode.INCREMENTAL]
    )
    last = polled.order_by("-finished_at").first()
    allowed = sync_stale_after()
    if last is None or last.finished_at is None:
        return Check(False, "no successful sync yet")
    age = (timezone.now() - last.finished_at).total_seconds()
    if age > allowed:
        if _sync_under_way():
            # A long full read (100,000 items paced under Alloy's limit takes minutes) is alive while
            # it renews its lease: not a reason to take the service out of a load balancer.
            return Check(True, f"a sync is under way; last successful sync {age:.0f} s ago")
        return Check(False, f"last successful sync {age:.0f} s ago, more than {allowed:.0f} s")
    return Check(True, f"last successful sync {age:.0f} s ago")


def _sync_under_way() -> bool:
    """Whether a sync is running and still renewing its lease."""
    running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()
    return running and Lease.objects.filter(name=SYNC_LEASE, expires_at__gt=timezone.now()).exists()


def sync_stale_after() -> float:
    """Seconds without a successful sync before the service reports itself unhealthy."""
    # Two missed or failed syncs in a row are tolerated before the service reports itself unhealthy.
    return 2 * settings.ALLOY_SYNC_INTERVAL + 60
