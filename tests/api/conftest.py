"""API fixtures: users holding given permissions, their tokens, and clients that send them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery.signals import before_task_publish
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from scheduler.api_tokens import token_create

READ = ["scheduler.view_job", "scheduler.view_jobrun", "alloysync.view_syncrun"]
OPERATE = [*READ, "scheduler.run_job", "scheduler.change_job", "alloysync.run_sync"]


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@pytest.fixture
def token_for(django_user_model: Any) -> Callable[..., str]:
    """``token_for("ops", OPERATE)``: a user with those permissions and a new key for them."""

    def make(username: str, permissions: list[str] | None = None, **user_fields: Any) -> str:
        user = django_user_model.objects.create_user(username, **user_fields)
        user.user_permissions.set([_permission(p) for p in permissions or []])
        _, key = token_create(user=user, name=f"{username}'s")
        return key

    return make


def client_with(key: str | None, scheme: str = "Token") -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


@pytest.fixture
def operator(token_for: Callable[..., str]) -> APIClient:
    return client_with(token_for("ops", OPERATE))


@pytest.fixture
def reader(token_for: Callable[..., str]) -> APIClient:
    return client_with(token_for("viewer", READ))


@pytest.fixture
def published() -> Any:
    """Task messages published to the broker, as (task name, kwargs)."""
    sent: list[tuple[str, Any]] = []

    def record(body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        if headers:
            sent.append((headers.get("task"), body[1] if isinstance(body, tuple | list) else body))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)
