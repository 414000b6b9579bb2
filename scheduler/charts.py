"""Pictures for the admin, drawn on the server as inline SVG: no JavaScript, no library, no network.

Every text that reaches the markup (job names, errors, times) goes through Django's escaping: job
names come from Alloy and from operators, so they are hostile input. Colours name outcomes the same
way everywhere: succeeded green, failed red, skipped grey, running blue, queued light blue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from scheduler.dashboard import HourCounts
from scheduler.models import Job, JobRun

Status = JobRun.Status

# Fill colours by run status; chosen to read on the admin's light and dark themes alike.
STATUS_COLOURS: dict[str, str] = {
    Status.SUCCEEDED: "#2e7d32",
    Status.FAILED: "#c62828",
    Status.SKIPPED: "#9e9e9e",
    Status.RUNNING: "#1565c0",
    Status.QUEUED: "#90caf9",
}

# Run bars: pixels. 50 bars of 10 + 2 px fit the admin's form column at 1280 px.
BAR_WIDTH = 10
BAR_GAP = 2
BARS_HEIGHT = 60
# A run without a duration (queued, running, skipped) is a short stub, so it cannot pass for a quick run.
STUB_HEIGHT = 6
# The shortest finished run still shows: a 0-pixel bar would be a missing link.
MIN_BAR_HEIGHT = 2


def duration_text(duration: timedelta | None) -> str:
    """A duration as people read it: ``0.4 s``, ``12.0 s``, ``3 min 4 s``, ``2 h 5 min``; ``—`` if none."""
    if duration is None:
        return "—"
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def zone_or_utc(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or UTC if it cannot be read."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Validated when saved; a picture must never break the page over an odd stored value.
        return ZoneInfo("UTC")


def time_text(when: datetime | None, zone: ZoneInfo) -> str:
    """``2026-11-30 02:30:00 GMT`` in ``zone``; ``—`` if none. Every time shown carries its zone."""
    if when is None:
        return "—"
    return f"{when.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"


def job_run_bars(job: Job, limit: int = 50) -> SafeString:
    """The job's last ``limit`` runs as an inline SVG bar chart, oldest left, newest right.

    A bar's height is the run's duration, scaled to the longest of them; runs without one (queued,
    running, skipped) are short stubs. Its colour is the outcome, and each bar links to the run's admin
    page, with a tooltip (status, duration, start time in the job's zone). One query.
    """
    runs = list(
        JobRun.objects.of_job_newest_first(job.pk).only("id", "status", "created_at", "started_at", "finished_at")[
            :limit
        ]
    )
    runs.reverse()
    label = f"Last {len(runs)} run{pluralize(len(runs))} of {job}"  # str(job): one line, no bidi controls
    if not runs:
        return format_html('<span class="run-bars-empty">{}</span>', "No runs yet.")
    zone = zone_or_utc(job.timezone)
    longest = max((run.duration.total_seconds() for run in runs if run.duration is not None), default=0.0)
    width = len(runs) * (BAR_WIDTH + BAR_GAP)
    bars = format_html_join("", "{}", ((_run_bar(run, index, longest, zone),) for index, run in enumerate(runs)))
    return format_html(
        '<svg class="run-bars" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="{}"><title>{}</title>{}</svg>',
        width,
        BARS_HEIGHT,
        width,
        BARS_HEIGHT,
        label,
        label,
        bars,
    )


def _run_bar(run: JobRun, index: int, longest: float, zone: ZoneInfo) -> SafeString:
    duration = run.duration
    if duration is None or run.status not in (Status.SUCCEEDED, Status.FAILED):
        height = STUB_HEIGHT
    elif longest <= 0:
        height = BARS_HEIGHT
    else:
        height = max(MIN_BAR_HEIGHT, round(BARS_HEIGHT * duration.total_seconds() / longest))
    status = Status(run.status) if run.status in Status.values else None
    tooltip = (
        f"Run {run.pk}: {status.label if status else run.status}, {duration_text(duration)}, "
        f"started {time_text(run.started_at, zone)}"
    )
    if run.started_at is None:
        tooltip = f"Run {run.pk}: {status.label if status else run.status}, created {time_text(run.created_at, zone)}"
    return format_html(
        '<a href="{}"><rect class="run-bar run-{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
        "<title>{}</title></rect></a>",
        reverse("admin:scheduler_jobrun_change", args=[run.pk]),
        run.status,
        index * (BAR_WIDTH + BAR_GAP),
        BARS_HEIGHT - height,
        BAR_WIDTH,
        height,
        STATUS_COLOURS.get(run.status, "#000000"),
        tooltip,
    )


# Runs per hour, stacked by outcome: bottom to top in this order, so failures sit on the baseline.
HOURLY_ORDER: Sequence[str] = (Status.FAILED, Status.SUCCEEDED, Status.SKIPPED, Status.RUNNING, Status.QUEUED)
# Runs-per-hour chart: pixels. 48 columns of 14 + 2 px, a margin for the axis labels.
HOUR_WIDTH = 14
HOUR_GAP = 2
HOURS_HEIGHT = 160
AXIS_LEFT = 40
AXIS_BOTTOM = 20
# An hour label every this many columns: 48 labels would overlap.
HOUR_LABEL_EVERY = 6


def runs_per_hour_chart(hours: Sequence[HourCounts]) -> SafeString:
    """Runs per hour as stacked SVG bars, oldest hour left, one colour per outcome (``HOURLY_ORDER``).

    ``hours`` come from ``scheduler.dashboard.runs_per_hour``. Each segment links to the run list
    filtered to that hour and status, with a tooltip giving the hour (with its zone), status and count.
    """
    peak = max((hour.total for hour in hours), default=0)
    scale = HOURS_HEIGHT / peak if peak else 0.0
    width = AXIS_LEFT + len(hours) * (HOUR_WIDTH + HOUR_GAP)
    height = HOURS_HEIGHT + AXIS_BOTTOM
    columns = format_html_join("", "{}", ((_hour_column(hour, index, scale),) for index, hour in enumerate(hours)))
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" fill="currentColor">{}</text>',
        (
            (AXIS_LEFT + index * (HOUR_WIDTH + HOUR_GAP), height - 6, f"{hour.start:%H:%M}")
            for index, hour in enumerate(hours)
            if index % HOUR_LABEL_EVERY == 0
        ),
    )
    total = sum(hour.total for hour in hours)
    label = f"Runs per hour over the last {len(hours)} hours: {total} in all, at most {peak} in an hour"
    return format_html(
        '<svg class="runs-per-hour" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="{}"><title>{}</title>'
        '<text x="0" y="10" font-size="10" fill="currentColor">{}</text>'
        '<text x="0" y="{}" font-size="10" fill="currentColor">0</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-width="1"/>{}{}</svg>',
        width,
        height,
        width,
        height,
        label,
        label,
        peak,
        HOURS_HEIGHT,
        AXIS_LEFT - 2,
        HOURS_HEIGHT,
        width,
        HOURS_HEIGHT,
        columns,
        labels,
    )


def _hour_column(hour: HourCounts, index: int, scale: float) -> SafeString:
    x = AXIS_LEFT + index * (HOUR_WIDTH + HOUR_GAP)
    end = hour.start + timedelta(hours=1)
    when = f"{hour.start:%Y-%m-%d %H:%M} to {end:%H:%M %Z}"
    changelist = reverse("admin:scheduler_jobrun_changelist")
    segments = []
    top = float(HOURS_HEIGHT)
    for status in (*HOURLY_ORDER, *sorted(set(hour.counts) - set(HOURLY_ORDER))):
        count = hour.counts.get(status, 0)
        if not count:
            continue
        # At least a pixel, so an hour with one failure among thousands of successes still shows it.
        size = max(1.0, count * scale)
        top -= size
        query = urlencode(
            {"status__exact": status, "created_at__gte": hour.start.isoformat(), "created_at__lt": end.isoformat()}
        )
        segments.append(
            format_html(
                '<a href="{}?{}"><rect class="hour-bar run-{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                "<title>{}: {} {}</title></rect></a>",
                changelist,
                query,
                status,
                x,
                f"{top:.1f}",
                HOUR_WIDTH,
                f"{size:.1f}",
                STATUS_COLOURS.get(status, "#000000"),
                when,
                count,
                status,
            )
        )
    return format_html_join("", "{}", ((segment,) for segment in segments))
