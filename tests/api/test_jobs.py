"""GET /api/v1/jobs/ and /jobs/{id}/: what a job shows, filters, pages, and a fixed number of queries."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler.api_tokens import token_create
from scheduler.models import Job, JobRun
from scheduler.services import job_pause, job_remove
from tests.api.conftest import client_with

pytestmark = pytest.mark.django_db


def test_a_job_shows_its_schedule_in_words_its_next_run_and_its_last_run(make_job, reader):
    job = make_job(name="gully report", cron="30 2 * * *", timezone="Europe/London")
    run = JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=JobRun.Status.SUCCEEDED)

    response = reader.get(f"/api/v1/jobs/{job.pk}/")

    assert response.status_code == 200
    data = response.json()
    assert data["name"] == "gully report"
    assert data["cron"] == "30 2 * * *"
    assert data["cron_description"] == "At 02:30"
    assert data["timezone"] == "Europe/London"
    assert data["steps"] == [{"function": "examples.echo", "kwargs": {"message": "hi"}}]
    next_run = datetime.fromisoformat(data["next_run_at"])
    assert next_run > timezone.now()
    assert next_run.astimezone(timezone.get_default_timezone()) is not None
    assert data["paused"] is False and data["pause_note"] == "" and data["paused_by"] is None
    assert data["last_run"]["id"] == run.pk
    assert data["last_run"]["status"] == "succeeded"
    assert data["last_run"]["url"].endswith(f"/api/v1/runs/{run.pk}/")
    assert data["url"].endswith(f"/api/v1/jobs/{job.pk}/")
    assert data["runs_url"].endswith(f"/api/v1/runs/?job={job.pk}")
    assert data["removed_at"] is None and data["sync_error"] == "" and data["failure_streak"] == 0


def test_next_run_is_the_cron_module_s_answer(make_job, reader):
    from scheduler.cron import next_fire

    job = make_job(cron="15 */3 * * *", timezone="America/New_York")
    before = timezone.now()
    shown = datetime.fromisoformat(reader.get(f"/api/v1/jobs/{job.pk}/").json()["next_run_at"])
    assert shown == next_fire(job.cron, job.timezone, before)


def test_a_paused_job_shows_who_paused_it_why_and_no_next_run(make_job, reader, django_user_model):
    job = make_job()
    boss = django_user_model.objects.create_user("boss")
    job_pause(job=job, note="Alloy outage", by=boss)

    data = reader.get(f"/api/v1/jobs/{job.pk}/").json()

    assert (data["paused"], data["pause_note"], data["paused_by"]) == (True, "Alloy outage", "boss")
    assert data["paused_at"] is not None and data["next_run_at"] is None


def test_an_unknown_or_malformed_job_id_is_a_json_404(reader):
    for path in ["/api/v1/jobs/999999/", "/api/v1/jobs/abc/", "/api/v1/jobs/99999999999999999999999/"]:
        response = reader.get(path)
        assert response.status_code == 404, path
        assert "detail" in response.json()


def test_filters_by_source_paused_failing_and_removed(make_job, reader):
    alloy = make_job(name="from alloy", source=Job.Source.ALLOY, external_id="A1")
    paused = make_job(name="paused")
    job_pause(job=paused, note="why")
    failing = make_job(name="failing")
    Job.objects.filter(pk=failing.pk).update(failure_streak=2)
    removed = make_job(name="removed")
    job_remove(job=removed)

    def names(query: str) -> set[str]:
        response = reader.get(f"/api/v1/jobs/?{query}")
        assert response.status_code == 200, response.json()
        return {job["name"] for job in response.json()["results"]}

    assert names("source=alloy") == {alloy.name}
    assert names("paused=true") == {"paused"}
    assert names("paused=false") == {"from alloy", "failing"}
    assert names("failing=true") == {"failing"}
    assert names("removed=true") == {"removed"}
    assert "removed" not in names("removed=false")
    assert names("source=local&failing=false&removed=false") == {"paused"}


def test_a_bad_filter_is_a_400_naming_the_parameter(reader):
    response = reader.get("/api/v1/jobs/?paused=maybe")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["paused"]
    response = reader.get("/api/v1/jobs/?source=nowhere")
    assert response.status_code == 400
    assert "source" in response.json()["errors"]
    assert "nowhere" in response.json()["errors"]["source"][0]


def test_pages_are_numbered_with_a_count(make_job, reader):
    for number in range(5):
        make_job(name=f"job {number}")
    first = reader.get("/api/v1/jobs/?page_size=2").json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    second = reader.get(first["next"]).json()
    assert [job["name"] for job in second["results"]] == ["job 2", "job 3"]
    third = reader.get(second["next"]).json()
    assert [job["name"] for job in third["results"]] == ["job 4"] and third["next"] is None
    assert reader.get("/api/v1/jobs/?page=9").status_code == 404


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/jobs/?page_size=100")
    assert response.status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_for_3_jobs_as_for_30_with_many_runs(make_job, django_user_model):
    user = django_user_model.objects.create_superuser("root")
    _, key = token_create(user=user)
    client = client_with(key)
    boss = django_user_model.objects.create_user("boss")

    def add_jobs(count: int) -> None:
        for _ in range(count):
            job = make_job()
            JobRun.objects.bulk_create(JobRun(job=job, trigger="schedule", status="failed") for _ in range(20))
            job_pause(job=job, note="n", by=boss)

    add_jobs(3)
    few = _list_queries(client)
    add_jobs(27)
    many = _list_queries(client)
    assert few == many
    assert many <= 6  # token, user, count, page (plus savepoints on some backends)


def test_the_fast_representation_is_drf_s_own(make_job, django_user_model):
    # JobSerializer builds its dict directly for speed; DRF's field walk is the reference.
    import json

    from rest_framework.renderers import JSONRenderer

    from scheduler.api.serializers import JobSerializer
    from scheduler.api.views import jobs_with_last_run
    from scheduler.runner import job_run_execute

    ops = django_user_model.objects.create_user("ops")
    plain = make_job(name="plain", steps='examples.echo {"message": "hi"}\nexamples.sleep {"seconds": 0}')
    job_pause(job=make_job(name="paused", timezone="Europe/London"), note="quiet week", by=ops)
    job_remove(job=make_job(name="removed", source=Job.Source.ALLOY, external_id="65f0c1a0e4d0a1b2c3d4e5f1"))
    refused = make_job(name="refused", source=Job.Source.ALLOY, external_id="65f0c1a0e4d0a1b2c3d4e5f2")
    Job.objects.filter(pk=refused.pk).update(sync_error="cron '61 * * * *': minute '61' is out of range", time_limit=90)
    job_run_execute(job=plain, trigger=JobRun.Trigger.COMMAND)
    job_run_execute(job=make_job(name="failing", steps='examples.fail {"message": "x"}'), trigger="schedule")

    serializer = JobSerializer(context={"request": None, "now": timezone.now()})
    render = JSONRenderer().render
    jobs = list(jobs_with_last_run())
    assert len(jobs) == 5
    for job in jobs:
        fast, reference = serializer.to_representation(job), serializer.drf_representation(job)
        assert list(fast) == list(reference)  # the same fields in the same order
        assert json.loads(render(fast)) == json.loads(render(reference)), job.name
