"""The rate limit's window is kept by the database's clock: web hosts whose clocks disagree share it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from scheduler.api_tokens import token_authenticate, token_create

pytestmark = pytest.mark.django_db


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SQLite's file has one host and one clock")
def test_a_host_whose_clock_runs_minutes_fast_neither_locks_out_nor_restarts_the_window(django_user_model):
    _, key = token_create(user=django_user_model.objects.create_user("portal"))
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):  # this host's clock, 5 min fast
        first = token_authenticate(key)
    second = token_authenticate(key)  # a host with the right time, at once

    assert first is not None and second is not None
    assert abs((first.window_started_at - timezone.now()).total_seconds()) < 30  # the database's time
    assert (second.window_started_at, second.window_requests) == (first.window_started_at, 2)
    assert 0 < second.retry_after() <= 60  # not the 6 minutes a fast host's stamp used to cost
    assert connection.vendor == "postgresql"
