"""Every path under /api/v1/ answers JSON (404 for no such path, whatever the method; a missing trailing
slash named); each sync has its own URL; the schema's ids are integers and its bodies have examples that
work as they stand (Swagger UI's "Try it out")."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from alloysync.models import SyncRun
from tests.api.conftest import READ, client_with

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing/",
        "/api/v1/syncs/abc/",
        "/api/v1/jobs/1/history/",
        "/api/v1/jobs/%EF%BC%91/",
        "/api/v1/runs/-1/",
        "/api/v1/schema/x/",
        "/api/v1/a/b/c",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "delete", "put"])
def test_an_unknown_path_is_a_json_404_for_any_method(reader, path, method, settings):
    settings.DEBUG = True  # no list of URL patterns, even then
    response = getattr(reader, method)(path)
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == "application/json"
    # No such URL with a slash either: no hint to add one (that is for URLs that exist with it).
    assert "No such path" in response.json()["detail"]


def test_an_unknown_path_is_a_json_404_without_credentials_too():
    response = client_with(None).get("/api/v1/nothing/")
    assert response.status_code == 404 and response.json()["detail"]


def test_a_post_without_the_trailing_slash_is_told_to_add_it(operator, make_job):
    job = make_job()
    response = operator.post(f"/api/v1/jobs/{job.pk}/runs", {}, format="json")
    assert response.status_code == 404
    assert f"slash; send this POST to /api/v1/jobs/{job.pk}/runs/" in response.json()["detail"]
    response = operator.get("/api/v1/jobs?page_size=1")
    assert response.status_code == 301 and response["Location"] == "/api/v1/jobs/?page_size=1"


def test_each_sync_has_its_own_url(reader):
    runs = [
        SyncRun.objects.create(trigger="schedule", mode="incremental", status="succeeded", started_at=timezone.now())
        for _ in range(2)
    ]
    listed = reader.get("/api/v1/syncs/").json()["results"]
    assert [row["url"] for row in listed] == [f"http://testserver/api/v1/syncs/{run.pk}/" for run in reversed(runs)]
    one = reader.get(listed[1]["url"])
    assert one.status_code == 200 and one.json() == listed[1]
    for path in ["/api/v1/syncs/999999/", "/api/v1/syncs/01/", f"/api/v1/syncs/0{runs[0].pk}/"]:
        response = reader.get(path)
        assert response.status_code == 404 and response.json()["detail"]


def test_reading_a_sync_needs_view_syncrun(token_for):
    run = SyncRun.objects.create(trigger="schedule", mode="incremental", status="succeeded", started_at=timezone.now())
    nobody = client_with(token_for("nobody", []))
    assert nobody.get(f"/api/v1/syncs/{run.pk}/").status_code == 403


@pytest.fixture
def schema(token_for):
    response = client_with(token_for("viewer", READ)).get("/api/v1/schema/?format=json")
    return json.loads(response.content)


def test_path_ids_are_integers_in_the_schema(schema):
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["schema"]["type"] == "integer", (path, parameter)


def _example(schema, path: str) -> object:
    content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return next(iter(content["examples"].values()))["value"]


def test_the_schemas_request_examples_work_as_they_stand(schema, operator, make_job, settings):
    settings.ALLOY_API_KEY, settings.ALLOY_JOB_DESIGN = "k" * 40, "designs_jobs"
    job = make_job(steps='examples.echo {"message": "hi"}')
    run = _example(schema, "/api/v1/jobs/{id}/runs/")
    assert run == {"kwargs": {"1": {"message": "hi"}}}
    assert operator.post(f"/api/v1/jobs/{job.pk}/runs/", run, format="json").status_code == 202
    pause = _example(schema, "/api/v1/jobs/{id}/pause/")
    assert operator.post(f"/api/v1/jobs/{job.pk}/pause/", pause, format="json").status_code == 200
    assert operator.post("/api/v1/syncs/", _example(schema, "/api/v1/syncs/"), format="json").status_code == 202
