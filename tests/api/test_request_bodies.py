"""Bodies Django would read as empty are refused, and API answers stay out of shared caches."""

from __future__ import annotations

import httpx
import pytest

from scheduler.models import JobRun
from tests.api.conftest import OPERATE, READ, client_with


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_refused_411_over_a_real_socket_and_nothing_runs(live_server, make_job, token_for):
    # Django under WSGI reads a body only by its Content-Length: this body used to read as empty,
    # and the job ran with its stored arguments instead of these (found by trying it under gunicorn).
    job = make_job()
    key = token_for("ops", OPERATE)

    def chunks():
        yield b'{"kwargs": {"1": '
        yield b'{"message": "from the portal"}}}'

    response = httpx.post(
        f"{live_server.url}/api/v1/jobs/{job.pk}/runs/",
        content=chunks(),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    assert not JobRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["chunked", "Chunked", "gzip, chunked"])
def test_any_chunked_transfer_encoding_is_refused_but_by_the_webhook_which_reads_it_itself(client, encoding):
    # The webhook reads what gunicorn de-chunked (tests/alloysync/test_webhook.py); no other view can.
    for url in ["/api/v1/syncs/", "/api/v1/jobs/1/pause/", "/admin/login/"]:
        response = client.post(
            url, data=b"{}", content_type="application/json", headers={"Transfer-Encoding": encoding}
        )
        assert response.status_code == 411, url


@pytest.mark.django_db
def test_api_answers_vary_by_token_and_are_never_stored_by_a_cache(make_job, token_for):
    make_job()
    response = client_with(token_for("reader", READ)).get("/api/v1/jobs/")
    assert response.status_code == 200
    assert "Authorization" in response["Vary"]
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    refused = client_with(None).get("/api/v1/jobs/")
    assert refused.status_code == 401 and "no-store" in refused["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_a_post_missing_the_trailing_slash_hears_where_to_send_it_and_nothing_runs(
    make_job, token_for, settings, debug
):
    # Django's APPEND_SLASH answered 500 (DEBUG) or a 301 that clients follow as a GET: nothing ran.
    settings.DEBUG = debug
    job = make_job()
    client = client_with(token_for("ops", OPERATE))
    response = client.post(f"/api/v1/jobs/{job.pk}/runs", {}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"].endswith(f"send this POST to /api/v1/jobs/{job.pk}/runs/")
    assert not JobRun.objects.exists()
    assert client.get(f"/api/v1/jobs/{job.pk}").status_code == 301  # a GET is redirected, as before
    nowhere = client.post("/api/v1/nowhere", {}, format="json")
    assert nowhere.status_code == 404 and "send this POST" not in nowhere.json()["detail"]
