"""A run asked for through the API, run by a real worker process: trigger api, who asked, its arguments."""

from __future__ import annotations

import pytest

from scheduler.api_tokens import token_create
from scheduler.models import JobRun
from tests.api.conftest import client_with
from tests.helpers import requires_services, wait_for

pytestmark = [requires_services, pytest.mark.e2e, pytest.mark.timeout(120)]


def test_a_worker_runs_what_the_api_queued_with_its_arguments(celery_processes, make_job, django_user_model):
    job = make_job(steps='examples.echo {"message": "usual"}\nexamples.echo {"message": "second"}')
    _, key = token_create(user=django_user_model.objects.create_superuser("portal"))
    celery_processes.start("worker", "--concurrency=1")

    response = client_with(key).post(
        f"/api/v1/jobs/{job.pk}/runs/", {"kwargs": {"2": {"message": "from the API"}}}, format="json"
    )

    assert response.status_code == 202, response.json()
    run_url = response.json()["url"]
    wait_for(
        lambda: JobRun.objects.filter(pk=response.json()["id"], finished_at__isnull=False).exists(),
        timeout=60,
        describe=f"the API's run\n{celery_processes.logs()}",
    )
    data = client_with(key).get(run_url).json()
    assert (data["trigger"], data["status"], data["requested_by"]) == ("api", "succeeded", "portal")
    assert [(s["kwargs"], s["result"]) for s in data["steps"]] == [
        ({"message": "usual"}, "usual"),
        ({"message": "from the API"}, "from the API"),
    ]
