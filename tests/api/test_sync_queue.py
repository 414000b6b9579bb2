"""POST /syncs/ twice close together: the first queues a sync (202), the second is told one is queued
(409) until a worker has run it; then a third queues the next. The queued mark lapses by itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alloysync.models import SyncRun
from alloysync.tasks import SYNC_QUEUED_LEASE
from alloysync.tasks import sync as sync_task
from config.env_secrets import Secret
from scheduler.models import Lease
from tests.alloysync.conftest import alloy  # noqa: F401  (the fixture: a fake Alloy, settings on it)
from tests.alloysync.helpers import API_KEY

pytestmark = pytest.mark.django_db


def test_a_second_post_while_the_first_sync_is_queued_is_a_409_then_a_third_after_it_ran(
    operator,
    published,
    alloy,  # noqa: F811
):
    first = operator.post("/api/v1/syncs/", {}, format="json")
    second = operator.post("/api/v1/syncs/", {"full": True}, format="json")
    assert first.status_code == 202, first.content
    assert second.status_code == 409, second.content
    assert "queued (since " in second.json()["detail"]
    assert len(published) == 1

    ((_, kwargs),) = published
    assert sync_task.apply(kwargs=kwargs).get() == "succeeded"  # as a worker runs the message
    (run,) = SyncRun.objects.all()
    assert run.trigger == "api"

    third = operator.post("/api/v1/syncs/", {}, format="json")
    assert third.status_code == 202, third.content
    assert len(published) == 2


def test_while_the_queued_sync_runs_the_409_names_its_record(operator, published, alloy):  # noqa: F811
    assert operator.post("/api/v1/syncs/", {}, format="json").status_code == 202
    run = SyncRun.objects.create(trigger="api", mode="incremental", status="running", started_at=timezone.now())
    response = operator.post("/api/v1/syncs/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"Sync {run.pk} is running")


def test_a_queued_mark_whose_message_was_lost_lapses(operator, published, alloy):  # noqa: F811
    assert operator.post("/api/v1/syncs/", {}, format="json").status_code == 202
    # The message never reached a worker; 120 s on, the mark has lapsed.
    Lease.objects.filter(name=SYNC_QUEUED_LEASE).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert operator.post("/api/v1/syncs/", {}, format="json").status_code == 202
    assert len(published) == 2


def test_a_failed_sync_lets_the_next_be_queued(operator, published, alloy, settings):  # noqa: F811
    assert operator.post("/api/v1/syncs/", {}, format="json").status_code == 202
    ((_, kwargs),) = published
    settings.ALLOY_API_KEY = Secret("0d5e0a1c-dead-beef-0000-123456789abc")  # Alloy refuses it: the sync fails
    sync_task.apply(kwargs=kwargs)
    assert not Lease.objects.filter(name=SYNC_QUEUED_LEASE, expires_at__gt=timezone.now()).exists()
    settings.ALLOY_API_KEY = Secret(API_KEY)
    assert operator.post("/api/v1/syncs/", {}, format="json").status_code == 202


def test_with_the_broker_away_a_sync_asked_for_is_503_and_the_next_ask_is_not_blocked(operator, alloy):  # noqa: F811
    from config import celery_app
    from tests.helpers import broker_unreachable

    with broker_unreachable(celery_app):
        response = operator.post("/api/v1/syncs/", {}, format="json")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The sync was not queued: the broker did not take the message")
    assert not Lease.objects.filter(name=SYNC_QUEUED_LEASE).exists()  # nothing queued, nothing to wait for
