"""GET /metrics: who may read it, what Prometheus reads, and what it costs."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config.env_secrets import Secret
from scheduler.models import Job, JobRun
from scheduler.runner import job_run_execute
from tests.metrics.helpers import TOKEN, samples, value

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = Secret(TOKEN)
    return TOKEN


def test_metrics_are_not_found_while_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = None
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Token {TOKEN}",
        f"bearer{TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer é",
    ],
)
def test_a_missing_or_wrong_token_is_refused_with_401(client, token, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.content.decode()


@given(header=st.text(max_size=80))
@hypothesis_settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_no_header_but_the_token_opens_metrics(client, token, header):
    if header[:7].lower() == "bearer " and header[7:].strip() == TOKEN:
        return
    try:
        response = client.get("/metrics", headers={"Authorization": header})
    except ValueError:  # a header the test client itself cannot send (a line break)
        return
    assert response.status_code == 401


def test_the_right_token_reads_metrics_prometheus_can_parse(client, token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response.get("Cache-Control", "") or "max-age=0" in response.get("Cache-Control", "")
    found = samples(response.content.decode())
    names = {name for name, _ in found}
    assert {"alloysync_jobs", "alloysync_beat_leader", "alloysync_write_back_backlog"} <= names


def test_the_token_never_reaches_the_logs(client, token, caplog):
    caplog.set_level(logging.DEBUG)
    client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    client.get("/metrics", headers={"Authorization": f"Bearer {token}wrong"})
    assert TOKEN not in caplog.text


def test_only_get_and_head_are_allowed_and_a_post_hears_405_not_a_csrf_page(token):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)  # as a browser or scraper meets it: CSRF checked
    authorization = {"Authorization": f"Bearer {token}"}
    assert client.post("/metrics", headers=authorization).status_code == 405
    assert client.put("/metrics", headers=authorization).status_code == 405
    assert client.head("/metrics", headers=authorization).status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_read_in_any_case_as_http_says(client, token, scheme):
    assert client.get("/metrics", headers={"Authorization": f"{scheme} {token}"}).status_code == 200


def _jobs_with_runs(make_job, count):
    for n in range(count):
        job = make_job(name=f"job {n}")
        if n % 3 == 0:
            job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)


@pytest.mark.parametrize("jobs", [3, 300])
def test_a_scrape_costs_the_same_queries_whatever_the_rows(client, token, make_job, jobs):
    _jobs_with_runs(make_job, jobs)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert len(queries) == 6, "\n".join(q["sql"] for q in queries)
    found = samples(response.content.decode())
    assert value(found, "alloysync_jobs", state="scheduled") == Job.objects.count() == jobs
