"""GET /runs/ (filters, cursor pages) and /runs/{id}/; GET and POST /syncs/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from alloysync.models import SyncRun
from alloysync.sync_lease import SYNC_LEASE
from scheduler.models import JobRun, Lease, StepRun

pytestmark = pytest.mark.django_db

ALLOY = {"ALLOY_API_KEY": "k" * 40, "ALLOY_JOB_DESIGN": "designs_jobs"}


def _runs(job, count, **fields):
    JobRun.objects.bulk_create(JobRun(job=job, trigger="schedule", status="succeeded", **fields) for _ in range(count))


def test_runs_come_newest_first_in_cursor_pages_without_repeats(make_job, reader):
    job = make_job()
    _runs(job, 7)
    seen = []
    url = "/api/v1/runs/?page_size=3"
    while url:
        page = reader.get(url).json()
        assert "count" not in page  # never counts the whole table
        seen += [run["id"] for run in page["results"]]
        url = page["next"]
    assert seen == sorted(JobRun.objects.values_list("pk", flat=True), reverse=True)


def test_runs_filter_by_job_status_and_trigger(make_job, reader):
    one, other = make_job(name="one"), make_job(name="other")
    _runs(one, 3)
    _runs(other, 2)
    JobRun.objects.create(job=one, trigger="api", status="failed")
    assert len(reader.get(f"/api/v1/runs/?job={one.pk}").json()["results"]) == 4
    assert {r["job"] for r in reader.get(f"/api/v1/runs/?job={other.pk}").json()["results"]} == {other.pk}
    failed = reader.get("/api/v1/runs/?status=failed").json()["results"]
    assert [(r["status"], r["trigger"], r["job_name"]) for r in failed] == [("failed", "api", "one")]
    assert len(reader.get("/api/v1/runs/?trigger=schedule").json()["results"]) == 5
    page = reader.get(f"/api/v1/runs/?job={one.pk}&page_size=2").json()
    rest = reader.get(page["next"]).json()
    assert len(page["results"]) + len(rest["results"]) == 4 and rest["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("job=abc", "job"),
        ("job=99999999999999999999999", "job"),
        ("status=lost", "status"),
        ("trigger=x", "trigger"),
        ("cursor=%00nonsense", "cursor"),
        ("cursor=WyJ4IiwxXQ", "cursor"),
        ("page_size=0", "page_size"),
        ("page_size=10000000000000", "page_size"),
    ],
)
def test_bad_run_filters_and_cursors_are_a_400_naming_them(reader, query, field):
    response = reader.get(f"/api/v1/runs/?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_a_run_shows_its_steps_arguments_results_and_errors(make_job, reader):
    job = make_job()
    run = JobRun.objects.create(job=job, trigger="manual", status="failed", error="step 2 failed")
    StepRun.objects.create(
        run=run, position=1, function="examples.echo", kwargs={"message": "m"}, status="succeeded", result="m"
    )
    StepRun.objects.create(
        run=run, position=2, function="examples.fail", kwargs={}, status="failed", error="Traceback..."
    )
    data = reader.get(f"/api/v1/runs/{run.pk}/").json()
    assert data["error"] == "step 2 failed"
    assert [(s["position"], s["function"], s["kwargs"], s["result"], s["error"]) for s in data["steps"]] == [
        (1, "examples.echo", {"message": "m"}, "m", ""),
        (2, "examples.fail", {}, None, "Traceback..."),
    ]
    assert reader.get("/api/v1/runs/123456/").status_code == 404
    assert reader.get("/api/v1/runs/x/").status_code == 404


def _sync(status="succeeded", started=None, **fields):
    return SyncRun.objects.create(trigger="schedule", status=status, started_at=started or timezone.now(), **fields)


def test_syncs_list_newest_first_in_cursor_pages(reader):
    now = timezone.now()
    for minutes in range(5):
        _sync(started=now - timedelta(minutes=minutes), items_read=minutes)
    first = reader.get("/api/v1/syncs/?page_size=3").json()
    second = reader.get(first["next"]).json()
    assert [s["items_read"] for s in first["results"] + second["results"]] == [0, 1, 2, 3, 4]
    assert second["next"] is None
    assert set(first["results"][0]) >= {
        "mode",
        "status",
        "created",
        "updated",
        "removed",
        "invalid",
        "errors",
        "message",
    }


@override_settings(**ALLOY)
def test_post_syncs_queues_the_sync_task(operator, published):
    response = operator.post("/api/v1/syncs/", {}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["full"] is False and response.json()["task"] == "alloysync.sync"
    ((task, kwargs),) = published
    assert task == "alloysync.sync" and kwargs == {"trigger": "api", "full": False, "queued_as": kwargs["queued_as"]}


@override_settings(**ALLOY)
def test_post_syncs_full_asks_the_task_for_a_complete_read(operator, published):
    response = operator.post("/api/v1/syncs/", {"full": True}, format="json")
    assert response.status_code == 202 and response.json()["full"] is True
    ((task, kwargs),) = published
    assert task == "alloysync.sync" and kwargs == {"trigger": "api", "full": True, "queued_as": kwargs["queued_as"]}


@override_settings(**ALLOY)
def test_post_syncs_is_409_while_a_sync_runs_or_holds_the_lease(operator, published):
    running = _sync(status="running")
    response = operator.post("/api/v1/syncs/", {}, format="json")
    assert response.status_code == 409 and "running" in response.json()["detail"]
    running.status = "succeeded"
    running.save()
    now = timezone.now()
    Lease.objects.create(
        name=SYNC_LEASE, holder="h:1:t", acquired_at=now, renewed_at=now, expires_at=now + timedelta(minutes=5)
    )
    response = operator.post("/api/v1/syncs/", {}, format="json")
    assert response.status_code == 409 and "lease" in response.json()["detail"]
    assert published == []


def test_post_syncs_without_alloy_configured_names_the_settings(operator, settings):
    settings.ALLOY_API_KEY = None
    response = operator.post("/api/v1/syncs/", {}, format="json")
    assert response.status_code == 503
    assert "ALLOY_API_KEY" in response.json()["detail"] and "ALLOY_JOB_DESIGN" in response.json()["detail"]


@override_settings(**ALLOY)
def test_post_syncs_validates_its_body(operator):
    response = operator.post("/api/v1/syncs/", {"full": "sometimes"}, format="json")
    assert response.status_code == 400 and "full" in response.json()["errors"]
    response = operator.post("/api/v1/syncs/", {"fulll": True}, format="json")
    assert response.status_code == 400 and "fulll" in response.json()["errors"]


def test_a_read_only_token_lists_syncs_and_cannot_start_one(reader):
    assert reader.get("/api/v1/syncs/").status_code == 200
    assert reader.post("/api/v1/syncs/", {}, format="json").status_code == 403
