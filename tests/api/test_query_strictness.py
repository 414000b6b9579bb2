"""Query strings: page sizes, page numbers, ids and filters written plainly, unknown parameters named,
and tampered cursors refused as such (400, never 500) on PostgreSQL and SQLite alike."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scheduler.models import JobRun

pytestmark = pytest.mark.django_db

RELAXED = hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _refused(response, name: str) -> None:
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [name], response.content


@pytest.mark.parametrize(
    "moment",
    [
        "2026-11-30T06:40:00+23:59",
        "2026-11-30T06:40:00-23:59",
        "2026-11-30T06:40:00+16:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59+00:00",
        "2026-11-30T06:40:00+05:30:30.5",
        "2026-11-30T06:40:00+05:30",  # a moment, but no cursor this API wrote: they are all in UTC
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/runs/", "/api/v1/syncs/"])
def test_a_cursor_with_a_time_the_database_refuses_is_not_a_cursor_from_this_api(make_job, reader, moment, path):
    JobRun.objects.create(job=make_job(), trigger="schedule", status="succeeded")
    response = reader.get(path, {"cursor": _cursor([moment, 5])})
    _refused(response, "cursor")
    assert "not a cursor from this API" in response.json()["detail"]


@RELAXED
@given(
    payload=st.one_of(
        st.tuples(
            st.datetimes(timezones=st.timezones() | st.just(None)).map(lambda d: d.isoformat()),
            st.integers(min_value=-(2**64), max_value=2**64),
        ).map(list),
        st.builds(
            lambda day, hours, minutes, sign: f"{day.isoformat()}T00:00:00{sign}{hours:02d}:{minutes:02d}",
            st.dates(),
            st.integers(0, 23),
            st.integers(0, 59),
            st.sampled_from("+-"),
        ).map(lambda text: [text, 5]),
        st.lists(st.text(max_size=30) | st.integers() | st.floats(), max_size=3),
    )
)
def test_any_cursor_payload_is_a_page_or_a_400_naming_cursor(make_job, reader, payload):
    for path in ["/api/v1/runs/", "/api/v1/syncs/"]:
        response = reader.get(path, {"cursor": _cursor(payload)})
        assert response.status_code in (200, 400), (path, payload, response.content)
        if response.status_code == 400:
            assert list(response.json()["errors"]) == ["cursor"]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "501", "1000000000", "1.0", "", " 5", "\uff15"])
@pytest.mark.parametrize("path", ["/api/v1/jobs/", "/api/v1/runs/", "/api/v1/syncs/"])
def test_page_size_outside_1_to_500_is_refused_naming_it(reader, path, value):
    _refused(reader.get(path, {"page_size": value}), "page_size")


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.0", "01", "last", "", "\uff11"])
def test_a_jobs_page_that_is_no_plain_number_is_refused_naming_page(make_job, reader, value):
    make_job()
    _refused(reader.get("/api/v1/jobs/", {"page": value}), "page")
    assert reader.get("/api/v1/jobs/", {"page": "1"}).status_code == 200
    assert reader.get("/api/v1/jobs/", {"page": "2"}).status_code == 404  # past the end: no such page


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/jobs/", "unknown"),
        ("/api/v1/jobs/", "pasued"),
        ("/api/v1/jobs/", "status"),
        ("/api/v1/jobs/", "cursor"),
        ("/api/v1/runs/", "page"),
        ("/api/v1/runs/", "paused"),
        ("/api/v1/syncs/", "job"),
        ("/api/v1/syncs/", "page"),
    ],
)
def test_a_query_parameter_the_list_does_not_read_is_refused_naming_it(reader, path, name):
    response = reader.get(path, {name: "true"})
    _refused(response, name)
    assert "unknown query parameter" in response.json()["detail"]


def test_the_parameters_each_list_reads_are_accepted(make_job, reader):
    make_job()
    assert (
        reader.get(
            "/api/v1/jobs/?source=local&paused=false&failing=false&removed=false&page=1&page_size=5&format=json"
        ).status_code
        == 200
    )
    assert reader.get("/api/v1/runs/?job=1&status=failed&trigger=api&page_size=5&format=json").status_code == 200
    assert reader.get("/api/v1/syncs/?page_size=5&format=json").status_code == 200


@pytest.mark.parametrize("value", ["\uff11", "01", "+1", " 1", "1.0", "0", "-1", "9" * 20])
def test_runs_job_filter_takes_only_an_id_written_plainly(make_job, reader, value):
    make_job()
    _refused(reader.get("/api/v1/runs/", {"job": value}), "job")


@pytest.mark.parametrize("written", ["0{}", "00{}", "+{}", " {}", "{}.0"])
def test_a_job_or_run_id_written_otherwise_is_a_404_like_any_unknown_id(make_job, reader, written):
    job = make_job()
    run = JobRun.objects.create(job=job, trigger="schedule", status="succeeded")
    for path in [f"/api/v1/jobs/{written.format(job.pk)}/", f"/api/v1/runs/{written.format(run.pk)}/"]:
        response = reader.get(path)
        assert response.status_code == 404, (path, response.content)
        assert response.json()["detail"]
    assert reader.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert reader.get(f"/api/v1/runs/{run.pk}/").status_code == 200
