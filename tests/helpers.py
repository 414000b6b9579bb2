"""Helpers that several test modules share: paths, waiting, service checks, real Celery processes.

Plain functions and classes, imported where used; the fixtures built on them are in conftest.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from kombu.utils.url import parse_url

PROJECT_DIR = Path(__file__).resolve().parent.parent
ALLOY_TEST_KEY = "7c1e4b2a-9d3f-4a6b-8c5d-2e1f0a9b8c7d"


def _uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def broker_scheme() -> str:
    """The broker URL's scheme: redis, rediss, amqp, amqps, pyamqp or filesystem."""
    return settings.CELERY_BROKER_URL.split(":", 1)[0]


def uses_amqp() -> bool:
    """RabbitMQ (amqp://, amqps://, pyamqp://) rather than Redis or the filesystem."""
    return broker_scheme() in {"amqp", "amqps", "pyamqp"}


def _uses_networked_broker() -> bool:
    return broker_scheme() in {"redis", "rediss", "amqp", "amqps", "pyamqp"}


requires_services = pytest.mark.skipif(
    not (_uses_postgres() and _uses_networked_broker()),
    reason="needs PostgreSQL and a networked broker: set DATABASE_URL=postgres://... and "
    "CELERY_BROKER_URL=redis://... or amqp://... (as .ci/run does)",
)


def database_url_for_children() -> str:
    """A DATABASE_URL for child processes that points at pytest's test database."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    return f"postgres://{credentials}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class CeleryProcesses:
    """Real ``celery worker`` / ``celery beat`` processes sharing the test database and a private queue."""

    def __init__(self, tmp_path: Path, queue: str) -> None:
        self.tmp_path = tmp_path
        self.queue = queue
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_for_children(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_QUEUE": queue,
            "JOB_HEARTBEAT_INTERVAL": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }

    def start(self, kind: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log_path = self.tmp_path / f"{kind}-{len(self.processes)}.log"
        # No --loglevel: LOG_LEVEL (in self.env) decides, as for an operator's worker.
        command = [sys.executable, "-m", "celery", "-A", "config", kind, *extra]
        if kind == "worker":
            command += ["-Q", self.queue, "-n", f"{self.queue}-{len(self.processes)}@%h", "--without-mingle"]
        if kind == "beat":
            command += ["--pidfile=", "--max-interval=2", "-s", str(self.tmp_path / "beat-schedule")]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=PROJECT_DIR, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append((process, log_path))
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}" for _, path in self.processes)

    def stop_all(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process, _ in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def broker_queue_delete(app: Any, queue: str) -> None:
    """Delete a test's private queue on RabbitMQ, where a durable queue outlives its consumers.

    Redis drops a list when it empties and the filesystem broker keeps no queue object, so only
    AMQP needs this; without it every test run leaves its queues (and any unread messages) on the
    shared server.
    """
    if not uses_amqp():
        return
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        connection.default_channel.queue_delete(queue)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], Any], *, timeout: float, interval: float = 0.25, describe: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``describe`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {describe or condition}")


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()))


def next_minute(after: datetime) -> datetime:
    return (after + timedelta(minutes=1)).replace(second=0, microsecond=0)


def unreachable_broker_url() -> str:
    """The broker URL with its port changed to 1, where nothing listens: the same transport (kombu
    raises that transport's errors, and retries as it does for it), no server behind it."""
    url = parse_url(settings.CELERY_BROKER_URL)
    scheme = broker_scheme()
    if scheme == "filesystem":  # no connection to refuse: as before, a Redis port nothing listens on
        return "redis://127.0.0.1:1/0"
    credentials = f"{url['userid'] or ''}:{url['password'] or ''}@" if url["userid"] or url["password"] else ""
    return f"{scheme}://{credentials}127.0.0.1:1/{url['virtual_host'] or ''}"


@contextmanager
def broker_unreachable(app: Any) -> Iterator[None]:
    """Publishing from this process goes to a port where nothing listens, until the block ends.

    Celery lets the CELERY_BROKER_URL environment variable win over broker_url, so the write URL is
    set. The producer pool is bound to the URL it was first made with: it is dropped on the way in
    and out, or every later test of this process would publish to the dead port.
    """
    previous = app.conf.broker_write_url
    _drop_producer_pool(app)
    app.conf.broker_write_url = unreachable_broker_url()
    try:
        yield
    finally:
        app.conf.broker_write_url = previous
        _drop_producer_pool(app)


def _drop_producer_pool(app: Any) -> None:
    # Both pools are bound to the URL they were made with: the producers' and the connections'
    # (kombu keeps one connection pool per URL). Closing one for good (force_close_all's default)
    # left "Acquire on closed pool" for every later publish of the process.
    pool = app.amqp._producer_pool
    if pool is not None:
        pool.force_close_all(close_pool=False)
    app.amqp._producer_pool = None
    app._pool = None
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None


class BrokerRelay:
    """A TCP relay in front of the broker that the test can cut and restore: a broker outage as the
    processes behind it see one, without stopping the server that other people on this machine use.

    Processes get ``url`` (the broker URL with the relay's port). ``cut()`` closes the listening
    socket and every relayed connection (peers see the connection drop, and new ones are refused,
    as when the server stops); ``restore()`` listens on the same port again. What a real restart
    adds, losing what the server held in memory, is not simulated: Celery's queues and messages on
    RabbitMQ are durable and persistent, so a restart keeps them too.
    """

    def __init__(self, broker_url: str) -> None:
        parsed = parse_url(broker_url)
        self.upstream = (parsed["hostname"] or "127.0.0.1", int(parsed["port"] or 5672))
        self.port = free_port()
        host_and_port = f"{self.upstream[0]}:{self.upstream[1]}"
        self.url = broker_url.replace(f"@{host_and_port}", f"@127.0.0.1:{self.port}", 1)
        if self.url == broker_url:
            raise ValueError("the broker URL must name its host and port, as in amqp://user:password@host:5672//")
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for connection in self._connections:
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._connections |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):  # one side closed: close both, as a broker's end would
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@contextmanager
def broker_relay() -> Iterator[BrokerRelay]:
    """A ``BrokerRelay`` to this test run's broker, listening until the block ends."""
    relay = BrokerRelay(settings.CELERY_BROKER_URL)
    relay.restore()
    try:
        yield relay
    finally:
        relay.cut()
