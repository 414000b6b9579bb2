import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alloysync.fake_alloy import FakeAlloyServer
from alloysync.models import SyncRun
from alloysync.sync_lease import SYNC_LEASE
from config import celery_app
from config.env_secrets import Secret
from scheduler import health
from scheduler.health import Check, health_summary
from scheduler.leases import lease_hold
from scheduler.models import Lease
from tests.helpers import broker_unreachable

pytestmark = pytest.mark.django_db

SECRET_KEY_VALUE = "9f8e7d6c-5b4a-4321-8765-0fedcba98765"


@pytest.fixture
def staff(client, django_user_model):
    """The client, logged in as staff: /healthz then shows each check's detail."""
    client.force_login(django_user_model.objects.create_user("ops", password="a-long-password-1", is_staff=True))
    return client


@pytest.fixture
def beat_alive():
    assert lease_hold(name="beat", holder="beat-host:42:abcd", ttl=30)


@pytest.fixture
def alloy_configured(settings):
    # A real (fake) Alloy: the alloy check calls it, and must never send a test key to a real host.
    with FakeAlloyServer(api_key=SECRET_KEY_VALUE) as server:
        settings.ALLOY_BASE_URL = server.url
        settings.ALLOY_API_KEY = Secret(SECRET_KEY_VALUE)
        settings.ALLOY_JOB_DESIGN = "designs_scheduledJobs_65f0c0ffee0000000000abcd"
        settings.ALLOY_SYNC_INTERVAL = 300
        yield server


@pytest.fixture
def broker_down():
    # A real connection attempt to a port where nothing listens.
    with broker_unreachable(celery_app):
        yield


def synced(minutes_ago):
    finished = timezone.now() - timedelta(minutes=minutes_ago)
    SyncRun.objects.create(trigger="schedule", status="succeeded", started_at=finished, finished_at=finished)


def get_health(client, query=""):
    response = client.get(f"/healthz{query}")
    return response.status_code, response.json()


def test_healthy_when_database_broker_beat_and_sync_are_fine(staff, beat_alive, alloy_configured):
    synced(minutes_ago=1)
    status, body = get_health(staff)
    assert status == 200
    assert body["status"] == "ok"
    assert {"database", "broker", "beat", "alloy", "alloy_sync"} <= body["checks"].keys()
    assert body["checks"]["beat"]["detail"].startswith("leader beat-host:42:abcd renewed")
    assert SECRET_KEY_VALUE not in json.dumps(body)


def test_unhealthy_when_the_broker_is_unreachable(staff, beat_alive, broker_down):
    status, body = get_health(staff)
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["broker"] == {"ok": False, "detail": "broker unreachable (OperationalError)"}
    assert "6379" not in json.dumps(body) and "redis://" not in json.dumps(body)


def test_unhealthy_when_the_last_successful_sync_is_stale(staff, beat_alive, alloy_configured):
    synced(minutes_ago=30)
    SyncRun.objects.create(trigger="schedule", status="failed", started_at=timezone.now(), finished_at=timezone.now())
    status, body = get_health(staff)
    assert status == 503
    assert body["checks"]["alloy_sync"]["ok"] is False
    assert "more than 660 s" in body["checks"]["alloy_sync"]["detail"]


def test_a_webhooks_read_of_a_few_items_does_not_count_as_a_successful_sync(staff, beat_alive, alloy_configured):
    synced(minutes_ago=30)
    now = timezone.now()
    SyncRun.objects.create(trigger="webhook", mode="items", status="succeeded", started_at=now, finished_at=now)
    status, body = get_health(staff)
    assert status == 503 and "more than 660 s" in body["checks"]["alloy_sync"]["detail"]


def test_a_long_full_read_under_way_keeps_the_service_healthy_while_it_renews_its_lease(
    staff, beat_alive, alloy_configured
):
    synced(minutes_ago=30)
    SyncRun.objects.create(trigger="schedule", mode="full", status="running", started_at=timezone.now())
    assert lease_hold(name=SYNC_LEASE, holder="worker-1:7:beef", ttl=300)
    status, body = get_health(staff)
    assert status == 200 and body["checks"]["alloy_sync"]["detail"].startswith("a sync is under way")
    Lease.objects.filter(name=SYNC_LEASE).delete()  # the sync's process died: its lease lapsed
    status, body = get_health(staff)
    assert status == 503


def test_unhealthy_before_any_successful_sync(staff, beat_alive, alloy_configured):
    status, body = get_health(staff)
    assert (status, body["checks"]["alloy_sync"]["detail"]) == (503, "no successful sync yet")


def test_sync_is_not_judged_when_alloy_is_not_configured(staff, beat_alive):
    status, body = get_health(staff)
    assert status == 200
    assert body["checks"]["alloy_sync"]["detail"].startswith("Alloy sync not configured")


def test_unhealthy_when_no_beat_renews_the_lease(staff):
    status, body = get_health(staff)
    assert (status, body["checks"]["beat"]["detail"]) == (503, "no beat has started")
    lease_hold(name="beat", holder="old", ttl=30)
    Lease.objects.update(renewed_at=timezone.now() - timedelta(minutes=5))
    status, body = get_health(staff)
    assert status == 503 and body["checks"]["beat"]["detail"].startswith("no beat has renewed the leader lease")


def test_checks_can_be_limited_for_a_containers_own_health(client, broker_down):
    status, body = get_health(client, "?checks=database")
    assert (status, body) == (200, {"status": "ok", "failing": []})
    status, body = get_health(client, "?checks=nonsense")
    assert status == 400 and "unknown checks nonsense" in body["error"]


def test_the_health_command_exits_1_when_unhealthy(beat_alive, capsys):
    call_command("health", "database", "beat")
    assert json.loads(capsys.readouterr().out)["beat"]["ok"] is True
    Lease.objects.all().delete()
    with pytest.raises(CommandError, match="unhealthy"):
        call_command("health", "beat")


def test_anonymous_callers_get_the_status_and_failing_names_never_the_leaders_host_or_pid(client, beat_alive):
    status, body = get_health(client)
    assert (status, body) == (200, {"status": "ok", "failing": []})
    assert "beat-host" not in json.dumps(body) and "42" not in json.dumps(body)
    Lease.objects.update(renewed_at=timezone.now() - timedelta(minutes=5))
    status, body = get_health(client)
    assert (status, body) == (503, {"status": "unhealthy", "failing": ["beat"]})


def test_logged_in_users_who_are_not_staff_get_no_details_either(client, django_user_model, beat_alive, broker_down):
    client.force_login(django_user_model.objects.create_user("clerk", password="a-long-password-1"))
    status, body = get_health(client)
    assert (status, body) == (503, {"status": "unhealthy", "failing": ["broker"]})


def test_staff_get_the_details_with_the_same_status(staff, beat_alive, broker_down):
    status, body = get_health(staff)
    assert (status, body["status"], body["failing"]) == (503, "unhealthy", ["broker"])
    assert body["checks"]["beat"]["detail"].startswith("leader beat-host:42:abcd renewed")
    assert "checked_at" in body["checks"]


check_results = st.dictionaries(
    st.text(st.characters(codec="ascii", categories=["Ll", "Nd"]), min_size=1, max_size=12).map("probe_{}".format),
    st.tuples(st.booleans(), st.text(min_size=4)),
    min_size=1,
    max_size=5,
)


@given(results=check_results)
def test_the_summary_names_exactly_the_failing_checks_and_carries_no_detail(results):
    report = {"checked_at": "2026-11-29T20:00:00+00:00"}
    report.update({name: Check(ok, detail).as_dict() for name, (ok, detail) in results.items()})
    summary = health_summary(all(ok for ok, _detail in results.values()), report)
    assert set(summary) == {"status", "failing"}
    assert summary["failing"] == [name for name, (ok, _detail) in results.items() if not ok]
    assert summary["status"] == ("ok" if not summary["failing"] else "unhealthy")
    assert "checked_at" not in json.dumps(summary)


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
# django_user_model is only the user class: nothing in it needs resetting between examples.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ok=st.booleans(), detail=st.text())
def test_no_check_detail_reaches_a_caller_who_is_not_staff(who, ok, detail, django_user_model):
    client = Client()
    if who == "not staff":
        user, _created = django_user_model.objects.get_or_create(username="clerk")
        client.force_login(user)
    # A check of the kind that reports a holder, a host or an address: whatever it says stays inside.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(health, "_checks", {"probe": lambda: Check(ok, detail)})
        response = client.get("/healthz?checks=probe")
    assert response.status_code == (200 if ok else 503)
    # Exactly this, so nothing the check said is in it.
    assert response.json() == {"status": "ok" if ok else "unhealthy", "failing": [] if ok else ["probe"]}
