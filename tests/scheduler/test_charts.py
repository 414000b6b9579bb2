"""The admin's pictures: a job's run bars and the dashboard's runs per hour, as SVG a browser can draw."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.charts import HOURS_HEIGHT, duration_text, job_run_bars, runs_per_hour_chart
from scheduler.dashboard import HourCounts
from scheduler.models import Job, JobRun
from scheduler.plain_text import one_line

SVG = "{http://www.w3.org/2000/svg}"


def add_run(job: Job, status: str, seconds: float | None, *, ago: timedelta, error: str = "") -> JobRun:
    """A run created ``ago`` before now that took ``seconds`` (None: not finished or never started)."""
    created = timezone.now() - ago
    run = JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=status, error=error)
    started = created if status != JobRun.Status.QUEUED and status != JobRun.Status.SKIPPED else None
    finished = created + timedelta(seconds=seconds) if seconds is not None and started else None
    JobRun.objects.filter(pk=run.pk).update(created_at=created, started_at=started, finished_at=finished)
    run.refresh_from_db()
    return run


def bars_of(svg: str) -> list[ElementTree.Element]:
    # Our own output, parsed to prove it well-formed XML: not untrusted input.
    root = ElementTree.fromstring(svg)  # noqa: S314
    return [rect for rect in root.iter(f"{SVG}rect") if "run-bar" in rect.get("class", "")]


def test_bars_show_the_last_fifty_runs_oldest_left_each_linking_to_its_run(make_job):
    job = make_job(name="Gully report")
    runs = [add_run(job, JobRun.Status.SUCCEEDED, 1.0, ago=timedelta(minutes=60 - i)) for i in range(55)]

    svg = str(job_run_bars(job))

    bars = bars_of(svg)
    assert len(bars) == 50
    xs = [float(bar.get("x")) for bar in bars]
    assert xs == sorted(xs)
    links = re.findall(r'<a href="([^"]+)"', svg)
    assert links[0] == f"/admin/scheduler/jobrun/{runs[5].pk}/change/"  # the five oldest fall off
    assert links[-1] == f"/admin/scheduler/jobrun/{runs[-1].pk}/change/"


def test_bar_height_is_duration_and_colour_is_outcome(make_job):
    job = make_job(timezone="Europe/London")
    add_run(job, JobRun.Status.SUCCEEDED, 10.0, ago=timedelta(hours=5))
    add_run(job, JobRun.Status.FAILED, 5.0, ago=timedelta(hours=4))
    add_run(job, JobRun.Status.SKIPPED, None, ago=timedelta(hours=3))
    add_run(job, JobRun.Status.RUNNING, None, ago=timedelta(hours=2))
    add_run(job, JobRun.Status.QUEUED, None, ago=timedelta(hours=1))

    bars = bars_of(str(job_run_bars(job)))

    heights = [float(bar.get("height")) for bar in bars]
    colours = [bar.get("fill") for bar in bars]
    assert heights[0] == 2 * heights[1]  # 10 s is twice as tall as 5 s
    assert heights[2] == heights[3] == heights[4] < heights[1]  # no duration: a stub, not a long run
    assert colours[:4] == ["#2e7d32", "#c62828", "#9e9e9e", "#1565c0"]
    assert len(set(colours)) == 5


def test_tooltips_give_status_duration_and_the_start_with_its_zone(make_job):
    job = make_job(timezone="America/New_York")
    add_run(job, JobRun.Status.FAILED, 184.0, ago=timedelta(hours=1))

    (bar,) = bars_of(str(job_run_bars(job)))

    tooltip = bar.find(f"{SVG}title").text
    assert "Failed" in tooltip and "3 min 4 s" in tooltip
    assert re.search(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T", tooltip)


def test_bars_take_one_query_whatever_the_number_of_runs(make_job, django_assert_num_queries):
    job = make_job()
    for i in range(60):
        add_run(job, JobRun.Status.SUCCEEDED, float(i), ago=timedelta(minutes=i))
    with django_assert_num_queries(1):
        job_run_bars(job)


def test_a_job_without_runs_says_so(make_job):
    assert "No runs yet" in job_run_bars(make_job())


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0.4 s"), (12, "12.0 s"), (184, "3 min 4 s"), (7500, "2 h 5 min")])
def test_durations_read_as_people_write_them(seconds, text):
    assert duration_text(timedelta(seconds=seconds)) == text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=200))
def test_hostile_job_names_cannot_break_out_of_the_picture(make_job, name):
    job = make_job(name="placeholder")
    Job.objects.filter(pk=job.pk).update(name=name)
    job.refresh_from_db()
    add_run(job, JobRun.Status.FAILED, 1.0, ago=timedelta(minutes=1), error="<script>alert(1)</script>")
    svg = str(job_run_bars(job))
    # Well-formed, and the name is text: quotes or angle brackets stay inside the label and title.
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output
    # The name as pages show it: one line, bidi controls and invisible characters removed.
    assert root.get("aria-label") == f"Last 1 run of {one_line(name, 200)}"
    assert [element.tag for element in root.iter() if not element.tag.startswith(SVG)] == []


def test_runs_per_hour_stack_failures_at_the_bottom_and_scale_to_the_busiest_hour():
    utc = ZoneInfo("UTC")
    start = datetime(2026, 11, 30, 10, tzinfo=utc)
    hours = [
        HourCounts(start, {"succeeded": 30, "failed": 10}),
        HourCounts(start + timedelta(hours=1), {}),
        HourCounts(start + timedelta(hours=2), {"succeeded": 20}),
    ]

    root = ElementTree.fromstring(str(runs_per_hour_chart(hours)))  # noqa: S314 - our own output

    bars = [rect for rect in root.iter(f"{SVG}rect") if "hour-bar" in rect.get("class", "")]
    assert [bar.get("class") for bar in bars] == [
        "hour-bar run-failed",
        "hour-bar run-succeeded",
        "hour-bar run-succeeded",
    ]
    failed, succeeded, later = (float(bar.get("height")) for bar in bars)
    assert failed + succeeded == HOURS_HEIGHT  # the busiest hour fills the chart
    assert succeeded == 3 * failed and later == 2 * failed
    assert float(bars[0].get("y")) > float(bars[1].get("y"))  # failures at the bottom of the stack
    tooltips = [bar.find(f"{SVG}title").text for bar in bars]
    assert tooltips[0] == "2026-11-30 10:00 to 11:00 UTC: 10 failed"
    links = [link.get("href") for link in root.iter(f"{SVG}a")]
    assert links[0].startswith("/admin/scheduler/jobrun/?status__exact=failed&created_at__gte=2026-11-30T10")


def test_an_empty_chart_still_draws():
    utc = ZoneInfo("UTC")
    hours = [HourCounts(datetime(2026, 11, 30, h, tzinfo=utc), {}) for h in range(3)]
    root = ElementTree.fromstring(str(runs_per_hour_chart(hours)))  # noqa: S314 - our own output
    assert "0 in all" in root.get("aria-label")
