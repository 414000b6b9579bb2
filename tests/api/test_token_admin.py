"""API tokens in the admin: the key shown once after adding, never again; list; revoke with permission."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission

from scheduler.api_tokens import key_hash, token_create
from scheduler.models import ApiToken
from tests.api.conftest import client_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(root)
    return client, root


def test_adding_a_token_shows_its_key_once_and_keeps_only_the_hash(admin_client_for):
    client, root = admin_client_for
    response = client.post("/admin/scheduler/apitoken/add/", {"user": root.pk, "name": "portal"})
    assert response.status_code == 200  # the key in the answer itself, not carried to another page
    assert "no-store" in response["Cache-Control"]
    key = re.search(r'id="api-token-key"[^>]*>([A-Za-z0-9_-]{43})<', response.content.decode()).group(1)
    assert key not in str(response.cookies) and not client.session.get("_messages")
    token = ApiToken.objects.get()
    assert token.key_hash == key_hash(key) and token.name == "portal"
    assert client_with(key).get("/api/v1/").status_code == 200
    # Never again: not on the list, not on the token's page.
    assert key not in client.get("/admin/scheduler/apitoken/").content.decode()
    page = client.get(f"/admin/scheduler/apitoken/{token.pk}/change/").content.decode()
    assert key not in page and token.key_prefix in page


def test_the_list_shows_prefix_user_name_and_use(admin_client_for):
    client, root = admin_client_for
    token, key = token_create(user=root, name="report portal")
    client_with(key).get("/api/v1/")
    page = client.get("/admin/scheduler/apitoken/").content.decode()
    assert f"{token.key_prefix}…" in page and "report portal" in page and "root" in page
    assert "never" not in page  # last used is stamped


def test_revoke_action_needs_change_permission(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_apitoken"))
    token, key = token_create(user=viewer)
    client.force_login(viewer)
    data = {"action": "revoke_tokens", "_selected_action": [token.pk]}
    client.post("/admin/scheduler/apitoken/", data)
    assert client_with(key).get("/api/v1/").status_code == 200  # not offered, not done
    viewer.user_permissions.add(Permission.objects.get(codename="change_apitoken"))
    client.post("/admin/scheduler/apitoken/", data)
    assert client_with(key).get("/api/v1/").status_code == 401


def test_a_staff_user_who_may_add_tokens_makes_them_only_for_themselves(client, django_user_model):
    # A token acts as its user: add_apitoken must not be a way to act as a superuser (found by trying it).
    boss = django_user_model.objects.create_superuser("boss", password="pw")
    maker = django_user_model.objects.create_user("maker", password="pw", is_staff=True)
    maker.user_permissions.set(Permission.objects.filter(codename__in=["add_apitoken", "view_apitoken"]))
    client.force_login(maker)

    form = client.get("/admin/scheduler/apitoken/add/").content.decode()
    assert f'value="{maker.pk}"' in form and f'value="{boss.pk}"' not in form
    response = client.post("/admin/scheduler/apitoken/add/", {"user": boss.pk, "name": "mine now"})

    assert response.status_code == 200 and not ApiToken.objects.filter(user=boss).exists()
    assert "Select a valid choice" in response.content.decode()
    client.post("/admin/scheduler/apitoken/add/", {"user": maker.pk, "name": "my own"})
    assert list(ApiToken.objects.values_list("user__username", flat=True)) == ["maker"]


def test_a_superuser_may_make_a_token_for_another_user(admin_client_for, django_user_model):
    client, _ = admin_client_for
    portal = django_user_model.objects.create_user("portal")
    assert client.post("/admin/scheduler/apitoken/add/", {"user": portal.pk, "name": "portal"}).status_code == 200
    assert ApiToken.objects.get().user == portal
