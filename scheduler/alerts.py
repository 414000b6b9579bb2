"""Alerts on state changes: a job starts failing, recovers, is auto-paused, or has its definition refused.

Each alert is recorded as an ``Alert`` row first, then queued for a worker (``scheduler.send_alert``)
once the row is committed; beat's ``scheduler.send_alerts`` sends whatever a worker never got to or
could not send (``alert_channels``). Nothing here sends anything or waits on a network, so a run is
never held up by an alert, and the run path pays no query at all when there is nothing to tell.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from kombu.exceptions import OperationalError

from scheduler.alert_text import (
    ERROR_MAX_CHARS,
    admin_url,
    alert_field,
    first_line,
    job_label,
    local_time,
    next_run_text,
    subject_line,
)
from scheduler.models import Alert, Job, JobRun

logger = logging.getLogger(__name__)

#: The Celery task that sends one alert (``scheduler.tasks_alerts.send_alert``). Public: messages carry it.
SEND_ALERT_TASK = "scheduler.send_alert"
#: Characters of the failing run's error kept in an auto-pause note.
PAUSE_NOTE_ERROR_CHARS = 200
#: Jobs a single sync newly refuses before their alerts become one summary alert (a renamed function
#: can turn thousands of items invalid at once: one message says so, not thousands).
REFUSED_ALERTS_MAX = 5
# Publishing must not hold a run or a sync for long when the broker is away: the sweep sends it.
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


def job_run_alerts(run: JobRun, *, streak: int, recovered: bool) -> None:
    """Tell operators what changed with the run that just finished (succeeded or failed).

    ``streak`` is the job's failure streak after this run (0 after a success, N after the Nth failure
    in a row, whatever triggered the runs); ``recovered`` is True when this success ended a streak.
    Alerts: FAILING when the streak becomes 1, RECOVERED on recovery, AUTO_PAUSED (and the pause)
    when the job's last ``JOB_AUTO_PAUSE_AFTER`` scheduled runs have all failed. Costs no query when
    there is nothing to tell. Never raises: an alert that cannot be recorded is logged, and the run
    it is about stays as recorded.
    """
    threshold = settings.JOB_AUTO_PAUSE_AFTER
    may_pause = bool(threshold) and streak >= threshold and run.trigger == JobRun.Trigger.SCHEDULE
    if not recovered and streak != 1 and not may_pause:
        return  # the common case, and the run path's query budget: nothing changed
    try:
        with transaction.atomic():
            _job_run_alerts(run, streak=streak, recovered=recovered, may_pause=may_pause)
    except Exception:
        logger.exception("run %s of job %s: its alert could not be recorded", run.pk, run.job_id)


def _job_run_alerts(run: JobRun, *, streak: int, recovered: bool, may_pause: bool) -> None:
    job = Job.objects.select_related("periodic_task").get(pk=run.job_id)
    if recovered:
        _record_run_alert(Alert.Kind.RECOVERED, job, run)
        return
    if may_pause and _auto_pause_if_due(job, run, settings.JOB_AUTO_PAUSE_AFTER):
        return  # the auto-pause alert says it failed, too: no second alert for the same run
    if streak == 1:
        _record_run_alert(Alert.Kind.FAILING, job, run)


def _auto_pause_if_due(job: Job, run: JobRun, threshold: int) -> bool:
    """Pause ``job`` if its last ``threshold`` scheduled runs all failed; True if it did.

    Only scheduled runs count (an operator trying a fix by hand does not pause the job), and only
    those since the job was last auto-paused: a job an operator resumed gets ``threshold`` fresh
    chances rather than being paused again at its next failure.
    """
    # Here, not at the top: services imports the runner's guards, which import this module.
    from scheduler.services import JobStateError, job_pause

    if job.periodic_task is None or not job.periodic_task.enabled:
        return False  # removed, or already paused by someone
    last_paused = Alert.objects.filter(job=job, kind=Alert.Kind.AUTO_PAUSED).aggregate(at=Max("created_at"))["at"]
    finished = Q(status__in=[JobRun.Status.SUCCEEDED, JobRun.Status.FAILED])
    runs = JobRun.objects.of_job_newest_first(job.pk).filter(finished, trigger=JobRun.Trigger.SCHEDULE)
    if last_paused is not None:
        runs = runs.filter(created_at__gt=last_paused)
    statuses = list(runs.values_list("status", flat=True)[:threshold])
    if len(statuses) < threshold or any(status != JobRun.Status.FAILED for status in statuses):
        return False
    last_error = first_line(run.error, PAUSE_NOTE_ERROR_CHARS) or "no error recorded"
    note = f"auto-paused after {threshold} consecutive failures (last: {last_error})"
    try:
        job_pause(job=job, note=note, by=None)
    except JobStateError:
        return False
    _record_run_alert(Alert.Kind.AUTO_PAUSED, job, run, threshold=threshold)
    return True


def _record_run_alert(kind: str, job: Job, run: JobRun, *, threshold: int = 0) -> Alert:
    subject, text = run_alert_message(kind, job, run, threshold=threshold)
    return alert_record(kind=kind, subject=subject, text=text, job=job, run=run)


def run_alert_message(kind: str, job: Job, run: JobRun, *, threshold: int = 0) -> tuple[str, str]:
    """The subject and text of a FAILING, RECOVERED or AUTO_PAUSED alert about ``run`` of ``job``.

    Plain lines: what changed, the run, its error's first line, the next run in the job's zone, and
    the run's admin address alone on the last line. Every value from the job or the run is cleaned
    and bounded (``alert_field``), so the text has these lines whatever the job is called.
    """
    label = job_label(job)
    texts: dict[str, tuple[str, str]] = {
        Alert.Kind.FAILING: (f"FAILING: {label}", f"Job {label} started failing."),
        Alert.Kind.RECOVERED: (f"RECOVERED: {label}", f"Job {label} recovered: its latest run succeeded."),
        Alert.Kind.AUTO_PAUSED: (
            f"AUTO-PAUSED: {label}",
            f"Job {label} was paused after {threshold} scheduled runs failed in a row. "
            "Only a resume (in the admin) schedules it again.",
        ),
    }
    headline, what = texts[kind]
    finished = local_time(run.finished_at, job.timezone) if run.finished_at else "not recorded"
    lines = [
        what,
        f"Run: {run.pk} ({alert_field(run.trigger, 16)}), {alert_field(run.status, 16)} at {finished}",
    ]
    if run.status == JobRun.Status.FAILED:
        lines.append(f"Error: {first_line(run.error, ERROR_MAX_CHARS) or 'no error recorded'}")
    lines += [
        f"Next run: {next_run_text(job)}",
        "Open the run in the admin:",
        admin_url("admin:scheduler_jobrun_change", run.pk),
    ]
    return subject_line(headline), "\n".join(lines)


def job_refused_alerts(jobs: Sequence[Job], *, count: int | None = None, more_url: str = "") -> list[Alert]:
    """Alert that a source's new definition of each job was refused (its ``sync_error``).

    Call once per change (a job's ``sync_error`` going from empty to an error), not for every sync
    that still refuses it. ``count`` is how many jobs were refused (``len(jobs)`` if not given: a
    caller may pass only the first few of many); ``more_url`` a page listing every refusal (the sync's
    record). More than ``REFUSED_ALERTS_MAX`` make one summary alert naming the first few.
    """
    count = len(jobs) if count is None else count
    if not jobs:
        return []
    if count > REFUSED_ALERTS_MAX:
        return [_refused_summary_alert(jobs[:REFUSED_ALERTS_MAX], count, more_url)]
    return [_refused_alert(job, more_url) for job in jobs]


def _refused_alert(job: Job, more_url: str) -> Alert:
    label = job_label(job)
    lines = [
        f"Job {label}: its new definition in {job.get_source_display()} was refused; "
        "the last valid definition keeps running.",
        f"Error: {first_line(job.sync_error, ERROR_MAX_CHARS) or 'no error recorded'}",
        f"Next run: {next_run_text(job)}",
        "Open the job in the admin:",
        admin_url("admin:scheduler_job_change", job.pk),
    ]
    if more_url:
        lines += ["The sync that refused it:", more_url]
    return alert_record(
        kind=Alert.Kind.INVALID, subject=subject_line(f"INVALID: {label}"), text="\n".join(lines), job=job
    )


def _refused_summary_alert(jobs: Sequence[Job], count: int, more_url: str) -> Alert:
    lines = [f"{count} jobs had their new definitions refused at once; their last valid ones keep running."]
    for job in jobs:
        lines.append(f"- {job_label(job)}: {first_line(job.sync_error, 160) or 'no error recorded'}")
    if count > len(jobs):
        lines.append(f"- and {count - len(jobs)} more")
    if more_url:
        lines += ["Every refusal is listed on the sync's page:", more_url]
    subject = subject_line(f"INVALID: {count} job definitions refused")
    return alert_record(kind=Alert.Kind.INVALID, subject=subject, text="\n".join(lines))


def alert_record(*, kind: str, subject: str, text: str, job: Job | None = None, run: JobRun | None = None) -> Alert:
    """Record an alert and queue its sending for once it is committed; returns the saved row.

    ``subject`` and ``text`` must already be safe (``alert_text``); they are stored as sent. The alert
    is logged too, so even with no channel configured it is seen in the service's log.
    """
    alert = Alert.objects.create(kind=kind, job=job, run=run, subject=subject, text=text)
    logger.warning("alert %s: %s", alert.pk, subject, extra={"alert_id": alert.pk, "alert_kind": kind})
    alert_id = alert.pk
    transaction.on_commit(lambda: alert_queue(alert_id), robust=True)
    return alert


def alert_queue(alert_id: int) -> bool:
    """Ask a worker to send the alert now; False if the broker is away (the beat sweep sends it)."""
    if not (settings.JOB_ALERT_EMAILS or settings.JOB_ALERT_WEBHOOK_URL):
        return False  # no channel: recorded and logged is all there is to do
    try:
        current_app.send_task(SEND_ALERT_TASK, args=[alert_id], retry=True, retry_policy=_PUBLISH_RETRY)
    except (OperationalError, OSError) as exc:
        # The exception's text may quote the broker's address; its type is enough to act on.
        logger.warning(
            "alert %s: could not be queued (%s); beat's scheduler.send_alerts sends it", alert_id, type(exc).__name__
        )
        return False
    return True
