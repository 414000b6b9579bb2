"""Jobs and their run history. Field names are public (the README lists them): operators query them."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import OuterRef, Q
from django_celery_beat.models import PeriodicTask

from scheduler.plain_text import one_line

# A year: longer is a typing mistake, and beyond what timers accept (config.env.MAX_SECONDS).
MAX_TIME_LIMIT = 366 * 24 * 3600


class Job(models.Model):
    class Source(models.TextChoices):
        ALLOY = "alloy", "Alloy"
        LOCAL = "local", "Local"

    name = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.LOCAL)
    external_id = models.CharField(
        max_length=64, blank=True, help_text="The Alloy item id; unique per source. Empty for local jobs."
    )
    cron = models.CharField(max_length=200, help_text="Five-field cron expression or a macro such as @daily.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA zone the cron is read in.")
    steps = models.JSONField(default=list, help_text='Functions run in order: [{"function": "...", "kwargs": {...}}].')
    periodic_task = models.OneToOneField(
        PeriodicTask,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="job",
        help_text="Beat's schedule entry; empty once the job is removed.",
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    sync_error = models.TextField(
        blank=True, help_text="Why the source's latest definition was refused; the last valid one keeps running."
    )
    pause_note = models.TextField(blank=True, help_text="Why an operator paused the job.")
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who paused the job; empty when alloysync paused it (auto-pause) or it is not paused.",
    )
    paused_at = models.DateTimeField(null=True, blank=True)
    time_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TIME_LIMIT)],
        help_text="Seconds a run may take before it is stopped and failed; empty: JOB_TIME_LIMIT.",
    )
    failure_streak = models.PositiveIntegerField(
        default=0, help_text="Runs failed in a row, up to the latest; 0 once one succeeds. Above 0: failing."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="job_unique_external_id_per_source",
            )
        ]
        indexes = [
            models.Index(fields=["name"]),
            # The dashboard's "failing now": few rows, asked for on every view.
            models.Index(fields=["failure_streak"], condition=Q(failure_streak__gt=0), name="job_failing"),
            # /metrics counts jobs by state on every scrape: each rare state through its own small
            # index, so a scrape over 100,000 jobs reads a few pages, not every job (a seq scan, 200 ms).
            models.Index(
                fields=["id"], condition=Q(removed_at__isnull=False) | Q(periodic_task__isnull=True), name="job_removed"
            ),
            models.Index(fields=["id"], condition=~Q(sync_error=""), name="job_invalid"),
            models.Index(fields=["id"], condition=Q(paused_at__isnull=False), name="job_paused"),
        ]
        # Running a job now is neither a change nor a view: operators who may read schedules, or even
        # edit them, are not thereby allowed to set a job off. Checked by the admin's "run now".
        permissions = [("run_job", "Can run jobs now")]

    def __str__(self) -> str:
        # Shown in titles, breadcrumbs, run lists and messages: one line, without the bidi controls
        # (U+202E) that would show the rest of a page's line reversed.
        return one_line(self.name, 200)  # the whole name: its column holds 200 characters

    @property
    def is_paused(self) -> bool:
        # The PeriodicTask's enabled box is the one switch beat reads, so it is the pause state.
        return self.periodic_task is not None and not self.periodic_task.enabled


# The Celery task that runs a job (scheduler.tasks.run_job): beat sends it, "run now" queues it. A
# public name: PeriodicTask rows and messages in flight carry it.
RUN_JOB_TASK = "scheduler.run_job"
# Who may run a job now (the admin's "run now", and running a job's periodic task by hand); see Job.Meta.
RUN_JOB_PERMISSION = "scheduler.run_job"


class JobRunQuerySet(models.QuerySet["JobRun"]):
    def of_job_newest_first(self, job: int | OuterRef) -> JobRunQuerySet:
        """The runs of ``job`` (an id, or ``OuterRef("pk")`` in a subquery), newest first.

        Read through the (job, -created_at) index whatever the job's history: filtered by a range,
        not ``job_id = ...``, and ordered by job first. With an equality, PostgreSQL may instead walk
        the created_at index backward, and for a job with many runs, none recent (a busy job paused
        for weeks), read 5 million rows for 1.2 s instead of the 50 it wanted.
        """
        return self.filter(job_id__gte=job, job_id__lte=job).order_by("job_id", "-created_at", "-id")


class JobRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Manual (admin)"
        COMMAND = "command", "Command"
        ALLOY = "alloy", "Alloy (run-now attribute)"
        API = "api", "API"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Refreshed while running; a stale one means the worker was lost."
    )
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid of the process that ran it.")
    error = models.TextField(blank=True)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="The scheduled time this run is for; empty for manual and command runs."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who asked for this run (manual and api runs).",
    )

    objects = JobRunQuerySet.as_manager()

    class Meta:
        constraints = [
            # Two runs of one job never run at once: the second one's claim fails on this index.
            models.UniqueConstraint(fields=["job"], condition=Q(status="running"), name="jobrun_one_running_per_job"),
            # At most one run per due time, whatever sends it twice (two beats, a redelivered message).
            models.UniqueConstraint(fields=["job", "due_at"], name="jobrun_one_per_due_time"),
        ]
        indexes = [
            models.Index(fields=["job", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
            # Retention and the dashboard's runs per hour walk runs by age.
            models.Index(fields=["created_at"]),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.job} run {self.pk} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class StepRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(help_text="1-based order within the run.")
    function = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="JSON-safe return value, truncated past a size cap.")
    error = models.TextField(blank=True, help_text="Traceback of a failed step.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="steprun_unique_position")]
        ordering = ["run", "position"]

    def __str__(self) -> str:
        return f"step {self.position} {self.function} ({self.status})"


class Lease(models.Model):
    """A lease: one holder at a time, kept by renewing, free once lapsed. ``beat`` says which beat
    sends due jobs; ``alloy-sync`` which process is syncing.

    Times come from the database's clock, so processes on hosts with skewed clocks agree on expiry.
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=255, help_text="host:pid:token of the process holding it: a beat or a sync.")
    acquired_at = models.DateTimeField()
    renewed_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder} until {self.expires_at:%H:%M:%S}"


class ScheduleState(models.Model):
    """Beat's own bookkeeping: when each periodic task is next due, indexed, so a tick asks only for
    what is due. Derived from the PeriodicTask (still the schedule of record) as of ``task_changed_at``.
    """

    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.CASCADE, primary_key=True, related_name="schedule_state"
    )
    next_due_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Empty: not scheduled.")
    task_changed_at = models.DateTimeField(
        db_index=True, help_text="The PeriodicTask's date_changed this was computed from."
    )

    def __str__(self) -> str:
        return f"{self.periodic_task_id} due {self.next_due_at}"


class Alert(models.Model):
    """One state change told to operators (e-mail, webhook), kept until every channel has it.

    Recorded first, sent by a worker after: a send that fails is retried with backoff and, if it
    never succeeds, stays here with its error; nothing is lost silently.
    """

    class Kind(models.TextChoices):
        FAILING = "failing", "Job started failing"
        RECOVERED = "recovered", "Job recovered"
        AUTO_PAUSED = "auto_paused", "Job auto-paused"
        INVALID = "invalid", "Job definition refused"
        SYNC_FAILING = "sync_failing", "Alloy sync failing"
        SYNC_RECOVERED = "sync_recovered", "Alloy sync recovered"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    run = models.ForeignKey(JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.CharField(max_length=255)
    text = models.TextField(help_text="The message as sent: plain text, readable in mail, Slack and Teams.")
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True, help_text="When the webhook accepted it.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at"])]

    def __str__(self) -> str:
        return self.subject


class ApiToken(models.Model):
    """A user's key to the REST API (``Authorization: Token <key>``).

    Only the key's SHA-256 is stored: the key itself is shown once, when it is made (the admin, or
    ``manage.py api_token``), and cannot be read back. The key is 256 random bits, so a plain hash is
    as good as a slow one and lets each request find its token by one indexed lookup. A token acts as
    its user, with that user's permissions: a read-only user's token reads and does not run.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. 'report portal'.")
    key_prefix = models.CharField(max_length=16, help_text="The key's first characters, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key, hex; the key is not kept.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set: the token is refused (401).")
    # The throttle's fixed window (API_RATE_LIMIT a minute), kept on the row every process reads, so
    # the limit holds across web processes and hosts; one UPDATE authenticates, counts and stamps.
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        label = one_line(self.name, 100) or "token"
        return f"{label} ({self.key_prefix}…)"


class MetricCounter(models.Model):
    """One series of a counter or histogram bucket for ``/metrics``, kept in the database.

    Runs, syncs and Alloy requests happen in many processes on many machines; each adds to these rows
    (``INSERT ... ON CONFLICT DO UPDATE``), so every web process's ``/metrics`` reads the same totals:
    none lost with a restarted worker, none counted twice by scraping two hosts. ``count`` is the
    number of events; ``total`` the sum of the values they observed (seconds), for a histogram's _sum.
    A histogram's bucket is a label (``le``), not cumulative here: ``/metrics`` adds them up.
    """

    metric = models.CharField(max_length=64)
    labels = models.CharField(max_length=255, help_text='Canonical label pairs: name="value",... sorted by name.')
    count = models.BigIntegerField(default=0)
    total = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["metric", "labels"], name="metriccounter_one_per_series")]

    def __str__(self) -> str:
        return f"{self.metric}{{{self.labels}}} {self.count}"
