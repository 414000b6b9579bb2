"""POST /jobs/{id}/runs/, /pause/, /resume/: what they do, who may, and the errors naming the field."""

from __future__ import annotations

import pytest

from scheduler.models import Job, JobRun
from scheduler.runner import job_run_execute
from scheduler.services import job_pause, job_remove

pytestmark = pytest.mark.django_db

TWO_STEPS = 'examples.echo {"message": "usual"}\nexamples.sleep {"seconds": 0}'


def test_a_run_by_the_api_is_queued_with_trigger_api_who_asked_and_its_arguments(
    make_job, operator, published, django_capture_on_commit_callbacks
):
    job = make_job(steps=TWO_STEPS)
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            f"/api/v1/jobs/{job.pk}/runs/", {"kwargs": {"1": {"message": "special"}}}, format="json"
        )

    assert response.status_code == 202, response.json()
    data = response.json()
    run = JobRun.objects.get(pk=data["id"])
    assert response["Location"] == data["url"] and data["url"].endswith(f"/api/v1/runs/{run.pk}/")
    assert (run.trigger, run.status, run.requested_by.username) == ("api", "queued", "ops")
    assert [(s["function"], s["kwargs"]) for s in data["steps"]] == [
        ("examples.echo", {"message": "special"}),
        ("examples.sleep", {"seconds": 0}),  # a step not named keeps its own arguments
    ]
    assert [name for name, _ in published] == ["scheduler.run_job"]
    assert published[0][1] == {"run_id": run.pk}

    finished = job_run_execute(job=job, trigger=run.trigger, run=run)  # what the worker does with it
    assert finished.status == JobRun.Status.SUCCEEDED
    detail = operator.get(data["url"]).json()
    assert detail["trigger"] == "api" and detail["requested_by"] == "ops" and detail["status"] == "succeeded"
    assert detail["steps"][0]["result"] == "special"


def test_steps_are_named_by_function_when_only_one_step_calls_it(make_job, operator):
    job = make_job(steps=TWO_STEPS)
    response = operator.post(
        f"/api/v1/jobs/{job.pk}/runs/", {"kwargs": {"examples.sleep": {"seconds": 0.5}}}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["steps"][1]["kwargs"] == {"seconds": 0.5}


def test_an_empty_body_runs_with_the_stored_arguments(make_job, operator):
    job = make_job(steps=TWO_STEPS)
    response = operator.post(f"/api/v1/jobs/{job.pk}/runs/")
    assert response.status_code == 202
    assert [s["kwargs"] for s in response.json()["steps"]] == [{"message": "usual"}, {"seconds": 0}]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kwargs": {"3": {}}}, "kwargs.3", "has no step 3"),
        ({"kwargs": {"examples.nope": {}}}, "kwargs.examples.nope", "no step calls"),
        ({"kwargs": {"1": {"nonsense": 1}}}, "kwargs", "step 1 (examples.echo)"),
        ({"kwargs": {"1": {"message": "a"}, "examples.echo": {"message": "b"}}}, "kwargs.examples.echo", "given twice"),
        ({"kwargs": {"1": []}}, "kwargs.1", "dictionary"),
        ({"kwargs": []}, "kwargs", "dictionary"),
        ({"kwarg": {}}, "kwarg", "unknown field"),
        ({"kwargs": {"1": {"message": "nul \u0000 here"}}}, "kwargs", "step 1"),
        ([1, 2], "non_field_errors", "dictionary"),
    ],
)
def test_bad_arguments_are_a_400_naming_the_step_and_queue_nothing(make_job, operator, body, field, words):
    job = make_job(steps=TWO_STEPS)
    response = operator.post(f"/api/v1/jobs/{job.pk}/runs/", body, format="json")
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert field in errors, errors
    assert words in " ".join(errors[field]), errors
    assert response.json()["detail"].startswith("Invalid request")
    assert not JobRun.objects.exists()


def test_malformed_json_is_a_400_naming_the_problem(make_job, operator):
    job = make_job()
    response = operator.post(f"/api/v1/jobs/{job.pk}/runs/", b'{"kwargs": ', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    deep = b'{"kwargs": {"1": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}}"
    response = operator.post(f"/api/v1/jobs/{job.pk}/runs/", deep, content_type="application/json")
    assert response.status_code == 400
    huge = b'{"kwargs": {"1": {"message": ' + b"9" * 5000 + b"}}}"
    assert operator.post(f"/api/v1/jobs/{job.pk}/runs/", huge, content_type="application/json").status_code == 400


def test_a_removed_job_cannot_run_409(make_job, operator):
    job = make_job()
    job_remove(job=job)
    response = operator.post(f"/api/v1/jobs/{job.pk}/runs/")
    assert response.status_code == 409
    assert "removed" in response.json()["detail"]


def test_a_paused_job_runs_as_the_admin_s_run_now_does(make_job, operator):
    job = make_job()
    job_pause(job=job, note="quiet week")
    assert operator.post(f"/api/v1/jobs/{job.pk}/runs/").status_code == 202


def test_pause_needs_a_note_and_records_who(make_job, operator):
    job = make_job()
    response = operator.post(f"/api/v1/jobs/{job.pk}/pause/", {}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["note"]
    response = operator.post(f"/api/v1/jobs/{job.pk}/pause/", {"note": "   "}, format="json")
    assert response.status_code == 400 and "note" in response.json()["errors"]

    response = operator.post(f"/api/v1/jobs/{job.pk}/pause/", {"note": "Alloy outage"}, format="json")

    assert response.status_code == 200
    assert (response.json()["paused"], response.json()["paused_by"]) == (True, "ops")
    job = Job.objects.select_related("periodic_task").get(pk=job.pk)
    assert job.is_paused and job.pause_note == "Alloy outage"
    again = operator.post(f"/api/v1/jobs/{job.pk}/pause/", {"note": "again"}, format="json")
    assert again.status_code == 409 and "already paused" in again.json()["detail"]


def test_resume_a_paused_job_and_409_for_one_not_paused(make_job, operator):
    job = make_job()
    response = operator.post(f"/api/v1/jobs/{job.pk}/resume/")
    assert response.status_code == 409 and "not paused" in response.json()["detail"]
    job_pause(job=job, note="n")
    response = operator.post(f"/api/v1/jobs/{job.pk}/resume/")
    assert response.status_code == 200 and response.json()["paused"] is False
    removed = make_job()
    job_remove(job=removed)
    assert operator.post(f"/api/v1/jobs/{removed.pk}/pause/", {"note": "x"}, format="json").status_code == 409
    assert operator.post(f"/api/v1/jobs/{removed.pk}/resume/").status_code == 409


def test_a_read_only_token_reads_and_cannot_run_pause_or_resume(make_job, reader):
    job = make_job()
    assert reader.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    for action, body in [("runs", {}), ("pause", {"note": "x"}), ("resume", {})]:
        response = reader.post(f"/api/v1/jobs/{job.pk}/{action}/", body, format="json")
        assert response.status_code == 403, action
        assert "permission" in response.json()["detail"]
    assert not JobRun.objects.exists()
    assert not Job.objects.get(pk=job.pk).pause_note


def test_what_a_token_does_is_in_the_job_s_admin_history_beside_the_admin_s_own(make_job, operator):
    from django.contrib.admin.models import LogEntry

    job = make_job()
    operator.post(f"/api/v1/jobs/{job.pk}/pause/", {"note": "Alloy outage"}, format="json")
    operator.post(f"/api/v1/jobs/{job.pk}/resume/")
    run_id = operator.post(f"/api/v1/jobs/{job.pk}/runs/", {"kwargs": {"1": {"message": "x"}}}, format="json").json()[
        "id"
    ]
    refused = operator.post(f"/api/v1/jobs/{job.pk}/resume/")  # not paused: 409, and nothing to record

    assert refused.status_code == 409
    entries = LogEntry.objects.filter(object_id=str(job.pk)).order_by("pk")
    assert [(e.user.username, e.get_change_message()) for e in entries] == [
        ("ops", "Paused: Alloy outage (through the API)"),
        ("ops", "Resumed (the pause note was: Alloy outage) (through the API)"),
        ("ops", f'Ran now with arguments: run {run_id} queued (step 1: {{"message": "x"}}) (through the API)'),
    ]


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_away_a_run_by_the_api_is_503_and_recorded_failed_not_left_queued(make_job, operator):
    from config import celery_app
    from tests.helpers import broker_unreachable

    job = make_job()
    with broker_unreachable(celery_app):
        response = operator.post(f"/api/v1/jobs/{job.pk}/runs/")
    assert response.status_code == 503
    run = JobRun.objects.get(job=job)
    assert response.json()["detail"].startswith(f"Run {run.pk} failed: not queued: the broker did not take")
    assert run.status == "failed"


def test_a_job_whose_periodic_task_is_gone_is_removed_to_the_api_filters_as_to_metrics(make_job, operator):
    from scheduler.metrics import job_state_counts

    live, lost = make_job(name="live"), make_job(name="lost")
    lost.periodic_task.delete()  # as deleting it on django-celery-beat's page would

    removed = operator.get("/api/v1/jobs/?removed=true").json()["results"]
    kept = operator.get("/api/v1/jobs/?removed=false").json()["results"]
    assert [job["name"] for job in removed] == ["lost"] and [job["name"] for job in kept] == ["live"]
    assert job_state_counts()["removed"] == 1
    assert live.pk != lost.pk
