"""Who may call the API: tokens (Token or Bearer), revoked and unknown ones, inactive users, sessions
with CSRF; the per-token rate limit across processes (on the token's row); the key never kept."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from scheduler.api_tokens import key_hash, token_authenticate, token_create
from scheduler.models import ApiToken, JobRun
from tests.api.conftest import OPERATE, READ, client_with

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/jobs/"),
    ("get", "/api/v1/jobs/1/"),
    ("post", "/api/v1/jobs/1/runs/"),
    ("post", "/api/v1/jobs/1/pause/"),
    ("post", "/api/v1/jobs/1/resume/"),
    ("get", "/api/v1/runs/"),
    ("get", "/api/v1/runs/1/"),
    ("get", "/api/v1/syncs/"),
    ("post", "/api/v1/syncs/"),
    ("get", "/api/v1/schema/?format=json"),
    ("get", "/api/v1/"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_anonymous_is_401_with_www_authenticate(method, path):
    response = getattr(APIClient(), method)(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert "credentials" in json.loads(response.content)["detail"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_unknown_and_revoked_tokens_are_401(method, path, token_for):
    key = token_for("ops", OPERATE)
    ApiToken.objects.update(revoked_at=timezone.now())
    for client in (client_with(key), client_with("not-a-key"), client_with(key, "Bearer")):
        response = getattr(client, method)(path)
        assert response.status_code == 401, (path, response.content)
        assert json.loads(response.content)["detail"] == "Invalid or revoked API token."


def test_the_docs_page_needs_a_login_too():
    response = APIClient().get("/api/v1/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 401


def test_bearer_is_accepted_as_well_as_token(token_for, make_job):
    key = token_for("viewer", READ)
    assert client_with(key, "Bearer").get("/api/v1/jobs/").status_code == 200
    assert client_with(key, "token").get("/api/v1/jobs/").status_code == 200


def test_a_token_of_an_inactive_user_is_401(token_for):
    key = token_for("gone", READ, is_active=False)
    response = client_with(key).get("/api/v1/jobs/")
    assert response.status_code == 401 and "inactive" in response.json()["detail"]


def test_a_user_without_view_permission_gets_403_on_reads(token_for):
    client = client_with(token_for("nobody", []))
    for path in ["/api/v1/jobs/", "/api/v1/runs/", "/api/v1/syncs/"]:
        assert client.get(path).status_code == 403
    assert client.get("/api/v1/").status_code == 200  # the index of links needs only a login


def test_a_superuser_may_do_everything(django_user_model, make_job):
    _, key = token_create(user=django_user_model.objects.create_superuser("root"))
    job = make_job()
    client = client_with(key)
    assert client.post(f"/api/v1/jobs/{job.pk}/runs/").status_code == 202
    assert client.post(f"/api/v1/jobs/{job.pk}/pause/", {"note": "n"}, format="json").status_code == 200


def test_a_session_reads_and_must_send_csrf_to_post(django_user_model, make_job):
    user = django_user_model.objects.create_superuser("admin", password="pw-123456")
    job = make_job()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/jobs/").status_code == 200
    response = client.post(f"/api/v1/jobs/{job.pk}/runs/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not JobRun.objects.exists()
    page = client.get("/api/v1/jobs/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"<html" in page.content  # the browsable API


def test_a_token_counts_its_requests_and_is_429_over_the_limit_with_retry_after(token_for, settings):
    settings.API_RATE_LIMIT = 3
    client = client_with(token_for("busy", READ))
    assert [client.get("/api/v1/runs/").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/api/v1/runs/")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()
    # The count is on the row: another process reads the same one. A new minute starts again.
    ApiToken.objects.update(window_started_at=timezone.now() - timedelta(seconds=61))
    assert client.get("/api/v1/runs/").status_code == 200
    assert ApiToken.objects.get().window_requests == 1


def test_one_update_authenticates_counts_and_stamps_last_used_at_most_once_a_minute(token_for):
    key = token_for("ops", READ)
    first = token_authenticate(key)
    stamped = ApiToken.objects.get().last_used_at
    second = token_authenticate(key)
    assert first is not None and second is not None
    assert (first.window_requests, second.window_requests) == (1, 2)
    assert ApiToken.objects.get().last_used_at == stamped is not None
    assert token_authenticate(key + "x") is None and token_authenticate("") is None


def test_the_key_is_kept_only_as_its_hash_and_never_logged(token_for, caplog, make_job):
    caplog.set_level(logging.DEBUG)
    key = token_for("ops", OPERATE)
    job = make_job()
    client = client_with(key)
    client.get("/api/v1/jobs/")
    client.post(f"/api/v1/jobs/{job.pk}/runs/")
    client_with(key + "wrong").get("/api/v1/jobs/")
    token = ApiToken.objects.get()
    assert token.key_hash == key_hash(key) and token.key_prefix == key[:8]
    assert key not in caplog.text
    with connection.cursor() as cursor:  # in no column of any table
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the database itself
            for row in cursor.fetchall():
                assert not any(isinstance(value, str) and key in value for value in row), table


def test_api_token_command_prints_the_key_alone_once(django_user_model, capsys):
    django_user_model.objects.create_user("portal")
    call_command("api_token", "portal", "--name", "report portal")
    out = capsys.readouterr()
    key = out.out.strip()
    assert "\n" not in key and len(key) >= 40
    assert key not in out.err
    token = ApiToken.objects.get()
    assert (token.name, token.key_hash, token.user.username) == ("report portal", key_hash(key), "portal")
    assert client_with(key).get("/api/v1/").status_code == 200


def test_api_token_revoke_revokes_all_live_tokens_of_the_user(django_user_model, capsys):
    user = django_user_model.objects.create_user("portal")
    keys = [token_create(user=user)[1] for _ in range(2)]
    _, kept = token_create(user=django_user_model.objects.create_user("other"))
    call_command("api_token", "portal", "--revoke")
    assert "revoked 2 token(s)" in capsys.readouterr().err
    assert [client_with(k).get("/api/v1/").status_code for k in keys] == [401, 401]
    assert client_with(kept).get("/api/v1/").status_code == 200


def test_api_token_revoke_by_prefix_revokes_only_that_one(django_user_model):
    user = django_user_model.objects.create_user("portal")
    _, one = token_create(user=user)
    _, two = token_create(user=user)
    call_command("api_token", "portal", "--revoke", "--prefix", one[:8])
    assert client_with(one).get("/api/v1/").status_code == 401
    assert client_with(two).get("/api/v1/").status_code == 200


def test_api_token_for_an_unknown_user_says_so_with_exit_status_2():
    with pytest.raises(CommandError, match="no user named 'ghost'") as error:
        call_command("api_token", "ghost")
    assert error.value.returncode == 2
