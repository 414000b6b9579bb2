"""One deadline per request: ALLOY_TIMEOUT bounds connect, send, headers and body together."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alloysync.client import AlloyClient, AlloyUnavailableError, AlloyUnreachableError
from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY

pytestmark = pytest.mark.timeout(60)


def test_a_body_trickled_a_byte_every_two_seconds_gives_up_at_the_timeout(server: FakeAlloyServer) -> None:
    # Before: httpx's timeout bounds each read, so this answer held the request open for 76 s.
    server.faults.trickle_next(1, interval=2.0)
    started = time.monotonic()

    with (
        AlloyClient(server.url, API_KEY, timeout=3, max_retry_seconds=0) as client,
        pytest.raises(AlloyUnavailableError, match=r"timed out after 3 s"),
    ):
        client.session_me()

    assert time.monotonic() - started < 2 * 3


def test_headers_trickled_a_byte_at_a_time_give_up_at_the_timeout_too(server: FakeAlloyServer) -> None:
    server.faults.trickle_next(1, interval=0.2, headers=True)
    started = time.monotonic()

    with (
        AlloyClient(server.url, API_KEY, timeout=1.5, max_retry_seconds=0) as client,
        pytest.raises(AlloyUnavailableError, match=r"timed out after 1.5 s"),
    ):
        client.session_me()

    assert time.monotonic() - started < 2 * 1.5


def test_a_trickled_answer_is_retried_within_the_budget(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.trickle_next(1, interval=1.0)

    with AlloyClient(server.url, API_KEY, timeout=1, sleep=sleeps.append) as client:
        assert client.count_items(ALL_JOBS) == 13

    assert client.requests_made == 2
    assert len(sleeps) == 1


def test_a_slow_answer_that_ends_within_the_deadline_is_read(server: FakeAlloyServer) -> None:
    server.faults.latency = 0.3
    server.faults.trickle_next(1, interval=0.002)  # ~150 bytes: about 0.3 s more

    with AlloyClient(server.url, API_KEY, timeout=3, max_retry_seconds=0) as client:
        assert "userSession" in client.session_me()
        assert client.count_items(ALL_JOBS) == 13  # and the connection is still good afterwards


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class _SessionHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"userSession": {"username": "tls"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_https_goes_through_the_deadline_transport_with_the_certificates_ssl_cert_file_names(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SessionHandler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # as httpx's own transport honours it
    try:
        with AlloyClient(f"https://127.0.0.1:{httpd.server_address[1]}", API_KEY, timeout=5) as client:
            assert client.session_me() == {"userSession": {"username": "tls"}}
            assert client.session_me() == {"userSession": {"username": "tls"}}  # kept alive, reused
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_server_that_never_finishes_the_tls_handshake_gives_up_at_the_timeout() -> None:
    with socket.socket() as silent:  # the kernel accepts the connection; nobody ever says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        with (
            AlloyClient(f"https://127.0.0.1:{silent.getsockname()[1]}", API_KEY, timeout=1, fail_fast=True) as client,
            pytest.raises(AlloyUnreachableError, match="no answer to the connection within 1 s"),
        ):
            client.session_me()

    assert time.monotonic() - started < 2 * 1
