"""What can stand in the demo's way is said on the terminal, with what to do: a taken admin port, a web
server that does not start, another sync holding the sync lock, a bad option value."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from alloysync.demo_steps import demo_sync, demo_sync_config, seconds, server_wait, tcp_port
from alloysync.fake_alloy import DEMO_API_KEY, FakeAlloyServer
from alloysync.models import SyncRun
from alloysync.sync import SYNC_LEASE
from scheduler.leases import lease_hold
from scheduler.models import Job
from tests.alloysync.helpers import sample_items
from tests.helpers import PROJECT_DIR

pytestmark = pytest.mark.timeout(120)

OTHER_SYNC = "other-host:4242:beefcafe"


def demo_environment(tmp_path: Path) -> dict[str, str]:
    """The embedded defaults in a folder of the test's own, as the README's `make demo` runs them."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "CELERY_BROKER_URL", "ALLOY_", "DJANGO_SETTINGS"))
    }
    return {**env, "VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}


@pytest.fixture(params=["listening", "bound"])
def taken_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port on 127.0.0.1 that something else holds: a server listening on it, or a socket only bound."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        if request.param == "listening":
            holder.listen()
        yield holder.getsockname()[1]


def test_a_taken_admin_port_is_said_on_the_terminal_before_anything_starts_or_any_login(tmp_path, taken_port):
    result = subprocess.run(
        [sys.executable, "manage.py", "demo", "--port", str(taken_port)],
        cwd=PROJECT_DIR,
        env=demo_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"port {taken_port} on 127.0.0.1, for the admin, is not free" in result.stderr
    assert "choose another port with --port: make demo DEMO_ARGS=" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Admin:" not in result.stdout and "password" not in result.stdout
    assert not (tmp_path / "var" / "logs").exists()  # nothing was started


def test_a_web_server_that_does_not_start_is_said_with_its_reason_and_the_port(tmp_path, taken_port):
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{taken_port}", "--noreload"],
            cwd=PROJECT_DIR,
            env=demo_environment(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with pytest.raises(CommandError) as refused:
            server_wait(
                taken_port, web, log, name="the admin web server", advice="choose another port with --port", health=True
            )
    finally:
        web.kill()
        web.wait()
    message = str(refused.value)
    assert message.startswith(f"the admin web server did not start on 127.0.0.1:{taken_port}: it exited with status")
    assert "That port is already in use" in message
    assert message.endswith("choose another port with --port")


@given(st.one_of(st.text(), st.integers().map(str)))
def test_a_port_option_is_a_port_or_refused_with_a_message(text):
    try:
        port = tcp_port(text)
    except argparse.ArgumentTypeError as exc:
        assert "is not a port: give a whole number from 1 to 65535" in str(exc)
    else:
        assert 1 <= port <= 65535


@given(st.one_of(st.text(), st.floats().map(str)))
def test_a_seconds_option_is_a_finite_number_or_refused_with_a_message(text):
    try:
        value = seconds(text)
    except argparse.ArgumentTypeError as exc:
        assert "is not a number of seconds" in str(exc)
    else:
        assert 0 <= value < float("inf")


@pytest.mark.parametrize(("option", "value"), [("--port", "70000"), ("--port", "eighty"), ("--sync-wait", "nan")])
def test_a_bad_option_value_is_refused_naming_the_option(option, value):
    with pytest.raises(CommandError, match=f"argument {option}: '?{value}'? is not a"):
        call_command("demo", option, value)


@pytest.fixture
def sample_alloy() -> Iterator[FakeAlloyServer]:
    with FakeAlloyServer(sample_items(), api_key=DEMO_API_KEY) as server:
        yield server


def test_the_demo_waits_for_a_sync_holding_the_lock_and_then_syncs(transactional_db, sample_alloy):
    assert lease_hold(name=SYNC_LEASE, holder=OTHER_SYNC, ttl=2)  # lapses by itself, as a stopped sync's does
    said: list[str] = []
    started = time.monotonic()

    outcome = demo_sync(demo_sync_config(sample_alloy.url), wait=30, say=said.append)

    assert outcome is not None and outcome.run.status == SyncRun.Status.SUCCEEDED
    assert outcome.run.created == 8
    assert 1.5 < time.monotonic() - started < 15
    assert len(said) == 1
    assert said[0].startswith(f"Another sync holds the sync lock ({OTHER_SYNC}, since ")
    assert said[0].endswith("waiting up to 30 s for it (--sync-wait)...")


def test_the_demo_goes_on_without_its_sync_when_the_lock_stays_held(transactional_db, sample_alloy):
    assert lease_hold(name=SYNC_LEASE, holder=OTHER_SYNC, ttl=300)
    said: list[str] = []
    started = time.monotonic()

    outcome = demo_sync(demo_sync_config(sample_alloy.url), wait=1.5, say=said.append)

    assert outcome is None
    assert 1.5 <= time.monotonic() - started < 10
    assert said[0].startswith(f"Another sync holds the sync lock ({OTHER_SYNC}, since ")
    assert said[1].startswith(
        "Another sync still holds the sync lock after 1.5 s: going on without the demo's own sync."
    )
    assert "UTC if its process has stopped" in said[1] and "--sync-wait" in said[1]
    assert not SyncRun.objects.exists() and not Job.objects.exists()
    assert sample_alloy.requests == []  # it never read Alloy behind the other sync's back
