"""The demo's checks and waits, apart from its command; each says on the terminal what is wrong and what to do.

- ``admin_port_check``: the admin's port is free, checked before anything starts or any login is printed.
- ``server_wait``: a child server answers on its port, or why it did not (the last line of its log).
- ``demo_sync``: the demo's first sync (``demo_sync_config``: from the fake Alloy's sample design),
  waiting a bounded time while another sync holds the lock.
- ``alloy_shows`` and ``wait_for_alloy``: what the fake Alloy now holds on an item (the round trip).
- ``tcp_port`` and ``seconds``: the command's option types, refusing a bad value with a message.
"""

from __future__ import annotations

import argparse
import math
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import CommandError

from alloysync import fake_alloy
from alloysync.client import AlloyClient, ItemQuery
from alloysync.mapping import AttributeCodes
from alloysync.models import SyncRun
from alloysync.sync import SYNC_LEASE, SyncAlreadyRunning, SyncConfig, SyncOutcome, alloy_sync
from scheduler.models import Lease

# Seconds between tries while another sync holds the lock, and between looks at a starting server.
_SYNC_RETRY = 1.0
_SERVER_POLL = 0.2


def tcp_port(text: str) -> int:
    """``--port``'s type: a whole number from 1 to 65535; argparse names the option with the error."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give a whole number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: give a whole number from 1 to 65535")
    return port


def seconds(text: str) -> float:
    """A wait in seconds: a finite number, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds: give 0 or more")
    return value


def admin_port_check(port: int) -> None:
    """Raise CommandError, naming the port and how to choose another, if 127.0.0.1:``port`` cannot be served."""
    problem = _bind_problem(port)
    if problem is not None:
        raise CommandError(
            f"port {port} on 127.0.0.1, for the admin, is not free ({problem}): another demo or server is "
            f"probably using it. Stop that, or {port_advice(port)}"
        )


def port_advice(port: int) -> str:
    """How to choose another port than ``port``, with one that is free now as the example."""
    candidates = range(port + 1, min(port + 20, 65535) + 1)
    free = next((candidate for candidate in candidates if _bind_problem(candidate) is None), 8001)
    return f'choose another port with --port: make demo DEMO_ARGS="--port {free}" (or manage.py demo --port {free})'


def _bind_problem(port: int) -> str | None:
    """Why 127.0.0.1:``port`` cannot be bound now (the system's words), or None if it can."""
    with socket.socket() as probe:
        # As runserver binds: a port left in TIME_WAIT by a server just stopped is free to both.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or type(exc).__name__
    return None


def server_wait(
    port: int,
    process: subprocess.Popen[bytes],
    log_path: Path,
    *,
    name: str,
    advice: str = "",
    health: bool = False,
    timeout: float = 30,
) -> None:
    """Return once 127.0.0.1:``port`` answers and ``process`` still runs.

    With ``health``, only an answer from this project's /healthz counts, so that another server that
    took the port after ``admin_port_check`` is not mistaken for ours. Raises CommandError naming
    ``name``, the port, its exit status and the last line of its log (runserver's "That port is
    already in use."), then ``advice``, if it exits or does not answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if _healthz_answers(port) if health else _answers(port):
            return
        if time.monotonic() >= deadline:
            raise CommandError(f"{name} did not answer on 127.0.0.1:{port} within {timeout:g} s; see {log_path}")
        time.sleep(_SERVER_POLL)
    last = _last_line(log_path)
    raise CommandError(
        f"{name} did not start on 127.0.0.1:{port}: it exited with status {process.returncode}"
        f"{f' ({last})' if last else ''}; see {log_path}.{f' {advice}' if advice else ''}"
    )


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _healthz_answers(port: int) -> bool:
    """Whether 127.0.0.1:``port`` answers /healthz as this project does (a status and the failing checks)."""
    try:
        # 200 or 503 alike: the answer's shape is what says the server is ours.
        body = httpx.get(f"http://127.0.0.1:{port}/healthz?checks=database", timeout=2).json()
    except (httpx.HTTPError, ValueError):  # nothing there yet, no answer in time, or not JSON: not ours
        return False
    return isinstance(body, dict) and {"status", "failing"} <= body.keys()


def _last_line(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def demo_sync_config(url: str) -> SyncConfig:
    """The sync of the fake Alloy's sample items at ``url``, whatever ALLOY_* the user's shell has set."""
    return SyncConfig(
        base_url=url,
        api_key=fake_alloy.DEMO_API_KEY,
        query=ItemQuery(fake_alloy.SAMPLE_DESIGN_CODE, "Live", fake_alloy.SAMPLE_FLAG_ATTRIBUTE),
        codes=AttributeCodes(
            title=fake_alloy.TITLE_ATTRIBUTE,
            cron=fake_alloy.SAMPLE_CRON_ATTRIBUTE,
            steps=fake_alloy.SAMPLE_STEPS_ATTRIBUTE,
            timezone=fake_alloy.SAMPLE_TIMEZONE_ATTRIBUTE,
        ),
        page_size=100,
        timeout=10,
        max_removal_fraction=settings.ALLOY_MAX_REMOVAL_FRACTION,
        default_timezone=settings.JOB_DEFAULT_TIMEZONE,
        observed_codes=tuple(fake_alloy.sample_write_back_settings().values()),
    )


def alloy_shows(url: str, item_id: str, code: str) -> Any:
    """The value of attribute ``code`` on the fake Alloy's item, as Alloy now holds it (None if none)."""
    with AlloyClient(url, fake_alloy.DEMO_API_KEY, timeout=5, max_retry_seconds=5) as client:
        item = client.get_item(item_id)
    return item.attribute(code) if item is not None else None


def wait_for_alloy(
    url: str, item_id: str, code: str, done: Callable[[Any], bool], *, timeout: float, alive: Callable[[], None]
) -> Any:
    """The attribute's value once ``done(value)``, polling the fake Alloy each second; None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = alloy_shows(url, item_id, code)
        if done(value) or time.monotonic() >= deadline:
            return value if done(value) else None
        alive()
        time.sleep(1)


def demo_sync(config: SyncConfig, *, wait: float, say: Callable[[str], None]) -> SyncOutcome | None:
    """The demo's first sync, recorded as ``sync_alloy``'s are; None if it could not take the lock.

    While another sync holds the lock (``sync_alloy`` in another shell, a worker's scheduled sync, or
    the lease of a process that stopped, which lapses by itself), tries every second for up to
    ``wait`` seconds, saying once what it waits for; then says it goes on without, and returns None.
    """
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            return alloy_sync(trigger=SyncRun.Trigger.COMMAND, config=config)
        except SyncAlreadyRunning:
            lease = Lease.objects.filter(name=SYNC_LEASE).first()
            holder = f" ({lease.holder}, since {lease.acquired_at:%H:%M:%S} UTC)" if lease else ""
            if time.monotonic() >= deadline:
                say(_going_on(wait, lease))
                return None
            if not told:
                say(f"Another sync holds the sync lock{holder}; waiting up to {wait:g} s for it (--sync-wait)...")
                told = True
        time.sleep(min(_SYNC_RETRY, max(deadline - time.monotonic(), 0.0)))


def _going_on(wait: float, lease: Lease | None) -> str:
    lapses = f" lapses at {lease.expires_at:%H:%M:%S} UTC if its process has stopped, and" if lease else ""
    return (
        f"Another sync still holds the sync lock after {wait:g} s: going on without the demo's own sync. The "
        f"lock{lapses} beat syncs every minute once it is free; or stop the demo and give --sync-wait more seconds."
    )
