"""Alerts about the Alloy sync: it keeps failing, it works again, or it refused jobs' new definitions.

The sync tells these once per change: ``ALLOY_SYNC_ALERT_AFTER`` failed syncs in a row make one
alert (not one more per further failure), the first sync that succeeds after them another; a job
whose definition turns invalid is told once, when its ``sync_error`` goes from empty to an error, not
at every sync that still refuses it. Alerts are recorded and sent as every alert is
(``scheduler.alerts``). Nothing here may fail a sync: trouble recording an alert is logged.

Refused syncs (a read that would remove too many jobs) neither count as failures nor end a run of
them: the read worked, and the refusal is an operator's decision to make, recorded with what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, transaction

from alloysync.health import alloy_configured
from alloysync.models import SyncRun
from scheduler.alert_text import ERROR_MAX_CHARS, admin_url, first_line, local_time, subject_line
from scheduler.alerts import REFUSED_ALERTS_MAX, alert_record, job_refused_alerts
from scheduler.models import Alert, Job

logger = logging.getLogger("alloysync.sync")

# Syncs that ran to an outcome about Alloy: refused ones are left out (see the module's docstring).
_COUNTED = (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED)
# Ids per query when looking jobs up: well under SQLite's limit on a statement's parameters.
_ID_CHUNK = 500


def sync_run_alerts(run: SyncRun) -> Alert | None:
    """After ``run`` finished: alert if it is the ``ALLOY_SYNC_ALERT_AFTER``-th failure in a row, or
    the success that ends such a run of failures; returns the alert recorded, if any. One query for
    a sync that changes nothing here. Never raises a database error: it is logged."""
    after = settings.ALLOY_SYNC_ALERT_AFTER
    # Not configured: a deployment of local jobs only, whose health says "not configured", ok.
    if not after or run.status not in _COUNTED or not alloy_configured():
        return None
    try:
        with transaction.atomic():
            return _sync_run_alert(run, after)
    except DatabaseError:
        logger.exception("sync %s: its alert could not be recorded", run.pk)
        return None


def _sync_run_alert(run: SyncRun, after: int) -> Alert | None:
    recent = list(
        SyncRun.objects.filter(status__in=_COUNTED, pk__lte=run.pk)
        .order_by("-pk")
        .values_list("pk", "status", "started_at", "message")[: after + 1]
    )
    statuses = [status for _, status, _, _ in recent]
    if run.status == SyncRun.Status.FAILED:
        # Exactly the after-th failure: the one before the streak (if any) did not fail.
        if statuses[:after] == [SyncRun.Status.FAILED] * after and statuses[after:] != [SyncRun.Status.FAILED]:
            return _failing_alert(run, after, since=recent[after - 1][2])
        return None
    before = recent[1:]
    if len(before) == after and all(status == SyncRun.Status.FAILED for status in statuses[1:]):
        return _recovered_alert(run, last_error=before[0][3])
    return None


def _failing_alert(run: SyncRun, after: int, *, since: datetime | None) -> Alert:
    since_text = local_time(since, "UTC") if since else "not recorded"
    lines = [
        f"The Alloy sync has failed {after} times in a row.",
        f"Last error: {first_line(run.message, ERROR_MAX_CHARS) or 'no message recorded'}",
        f"Failing since: {since_text}",
        "Jobs keep their last synced definitions and run on schedule; "
        "changes made in Alloy wait for a sync that works.",
        "Open the latest sync in the admin:",
        admin_url("admin:alloysync_syncrun_change", run.pk),
    ]
    subject = subject_line(f"SYNC FAILING: the Alloy sync failed {after} times in a row")
    return alert_record(kind=Alert.Kind.SYNC_FAILING, subject=subject, text="\n".join(lines))


def _recovered_alert(run: SyncRun, *, last_error: str) -> Alert:
    failed = SyncRun.objects.filter(status=SyncRun.Status.FAILED, pk__lt=run.pk)
    last_success = (
        SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED, pk__lt=run.pk).order_by("-pk").values("pk")[:1]
    )
    failed = failed.filter(pk__gt=last_success) if last_success.exists() else failed
    lines = [
        f"The Alloy sync works again: sync {run.pk} succeeded after {failed.count()} failed syncs in a row.",
        f"The last error was: {first_line(last_error, ERROR_MAX_CHARS) or 'no message recorded'}",
        f"Finished: {local_time(run.finished_at, 'UTC') if run.finished_at else 'not recorded'}",
        "Open the sync in the admin:",
        admin_url("admin:alloysync_syncrun_change", run.pk),
    ]
    subject = subject_line("SYNC RECOVERED: the Alloy sync works again")
    return alert_record(kind=Alert.Kind.SYNC_RECOVERED, subject=subject, text="\n".join(lines))


def jobs_newly_refused(invalid: Sequence[tuple[int, str]]) -> list[int]:
    """Of the jobs a sync is about to mark invalid (``(job id, error)``), those showing no error yet:
    the ones whose refusal is news. Call before the marks are written. No query if there are none."""
    ids = [job_id for job_id, _ in invalid]
    newly: list[int] = []
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        newly += Job.objects.filter(pk__in=chunk, sync_error="").values_list("pk", flat=True)
    return newly


def jobs_refused_alert(job_ids: Sequence[int], *, run: SyncRun) -> list[Alert]:
    """Alert about the jobs ``run`` newly refused (``jobs_newly_refused``), once their marks are
    committed: one alert a job, or one summary for many. Never raises a database error: it is logged."""
    if not job_ids:
        return []
    try:
        with transaction.atomic():
            shown = list(
                Job.objects.filter(pk__in=job_ids[:_ID_CHUNK])
                .exclude(sync_error="")
                .select_related("periodic_task")
                .order_by("name", "pk")[: REFUSED_ALERTS_MAX + 1]
            )
            count = len(job_ids) if len(job_ids) > REFUSED_ALERTS_MAX else len(shown)
            more_url = admin_url("admin:alloysync_syncrun_change", run.pk)
            return job_refused_alerts(shown, count=count, more_url=more_url)
    except DatabaseError:
        logger.exception("sync %s: the alerts about refused jobs could not be recorded", run.pk)
        return []
