"""The ``alloy`` health check against the fake Alloy: answers, refusals, and polling that stays cheap."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from alloysync import health
from alloysync.fake_alloy import FakeAlloyServer
from alloysync.health import alloy_check
from config.env_secrets import Secret
from tests.alloysync.helpers import API_KEY

pytestmark = pytest.mark.timeout(60)

WRONG_KEY = "0d5e0a1c-dead-beef-0000-123456789abc"


@pytest.fixture(autouse=True)
def no_cached_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_alloy_cached", None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The check's monotonic clock, in seconds; tests move it by changing ``clock[0]``."""
    now = [1000.0]
    monkeypatch.setattr(health, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def session_calls(server: FakeAlloyServer) -> int:
    return sum(1 for _, path, _ in server.requests if path == "/api/session/me")


def test_it_says_alloy_answers(alloy: FakeAlloyServer) -> None:
    check = alloy_check()

    assert check.ok
    assert check.detail == "Alloy answers"
    assert session_calls(alloy) == 1


def test_a_wrong_key_is_not_ok_and_the_message_shows_neither_key_nor_url(
    alloy: FakeAlloyServer, settings: Settings
) -> None:
    settings.ALLOY_API_KEY = Secret(WRONG_KEY)

    check = alloy_check()

    assert not check.ok
    assert "AlloyAuthError" in check.detail
    assert "ALLOY_API_KEY" in check.detail
    for secret in (WRONG_KEY, API_KEY, alloy.url, str(alloy.port)):
        assert secret not in check.detail


@pytest.mark.parametrize("missing", ["ALLOY_API_KEY", "ALLOY_JOB_DESIGN"])
def test_it_is_ok_when_alloy_is_not_configured(alloy: FakeAlloyServer, settings: Settings, missing: str) -> None:
    setattr(settings, missing, "")

    check = alloy_check()

    assert check.ok
    assert check.detail.startswith("Alloy not configured")
    assert session_calls(alloy) == 0


def test_it_asks_alloy_once_a_minute_however_often_it_is_polled(alloy: FakeAlloyServer, clock: list[float]) -> None:
    first = [alloy_check() for _ in range(5)]
    clock[0] += 59
    still_cached = alloy_check()
    clock[0] += 2
    asked_again = alloy_check()

    assert all(check.ok for check in [*first, still_cached, asked_again])
    assert session_calls(alloy) == 2


def test_a_failure_is_reused_too_but_new_settings_ask_again(
    alloy: FakeAlloyServer, settings: Settings, clock: list[float]
) -> None:
    settings.ALLOY_API_KEY = Secret(WRONG_KEY)
    refused = [alloy_check() for _ in range(3)]
    settings.ALLOY_API_KEY = Secret(API_KEY)
    answered = alloy_check()

    assert [check.ok for check in refused] == [False, False, False]
    assert answered.ok
    assert session_calls(alloy) == 2


def test_it_does_not_retry_a_5xx(alloy: FakeAlloyServer) -> None:
    alloy.faults.fail_next(1, status=503)

    check = alloy_check()

    assert not check.ok
    assert "AlloyUnavailableError, HTTP 503" in check.detail
    assert len(alloy.requests) == 1


def test_it_gives_up_after_its_timeout(alloy: FakeAlloyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "ALLOY_CHECK_TIMEOUT", 0.3)
    alloy.faults.hang_next(1, seconds=5)

    check = alloy_check()

    assert not check.ok
    assert "did not answer within 0.3 s" in check.detail
    assert len(alloy.requests) == 1


@pytest.mark.django_db
def test_healthz_reports_the_alloy_check(alloy: FakeAlloyServer, admin_client: Client) -> None:
    response = admin_client.get("/healthz?checks=alloy")  # details are for staff

    assert response.status_code == 200
    assert response.json()["checks"]["alloy"] == {"ok": True, "detail": "Alloy answers"}
    assert API_KEY not in json.dumps(response.json())
