"""A wrong ALLOY_BASE_URL fails fast by hand, and every setting the client cannot use is a clear AlloyError."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloysync.client import (
    UNREACHED_RETRY_SECONDS,
    AlloyClient,
    AlloyError,
    AlloyUnavailableError,
    AlloyUnreachableError,
)
from alloysync.client.reach import connect_cause
from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.client.helpers import API_KEY

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


def test_by_hand_a_closed_port_fails_at_once_naming_host_port_and_setting(closed_port: int) -> None:
    started = time.monotonic()

    with (
        AlloyClient(f"http://127.0.0.1:{closed_port}", API_KEY, fail_fast=True) as client,
        pytest.raises(AlloyUnreachableError) as caught,
    ):
        client.session_me()

    assert time.monotonic() - started < 2
    assert client.requests_made == 1
    error = caught.value
    assert error.message == (
        f"Cannot reach Alloy at 127.0.0.1:{closed_port}: the connection was refused: nothing listens on that "
        "port. Check ALLOY_BASE_URL."
    )
    assert (error.host, error.port) == ("127.0.0.1", closed_port)


def test_by_hand_a_name_that_does_not_resolve_fails_at_once() -> None:
    # .invalid never resolves (RFC 6761); the lookup is the only wait.
    with (
        AlloyClient("https://nonexistent.invalid", API_KEY, fail_fast=True) as client,
        pytest.raises(AlloyUnreachableError) as caught,
    ):
        client.session_me()

    assert client.requests_made == 1
    message = caught.value.message
    assert message.startswith(
        "Cannot reach Alloy at nonexistent.invalid:443: the name 'nonexistent.invalid' does not resolve"
    )
    assert message.endswith("Check ALLOY_BASE_URL.")


def test_by_hand_https_to_a_plain_http_port_fails_at_once_on_the_tls_handshake(server: FakeAlloyServer) -> None:
    with (
        AlloyClient(f"https://127.0.0.1:{server.port}", API_KEY, fail_fast=True) as client,
        pytest.raises(AlloyUnreachableError, match=r"the TLS handshake failed.*Check ALLOY_BASE_URL"),
    ):
        client.session_me()
    assert client.requests_made == 1


def test_scheduled_a_host_never_reached_is_retried_only_briefly(closed_port: int, sleeps: list[float]) -> None:
    with (
        AlloyClient(f"http://127.0.0.1:{closed_port}", API_KEY, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnreachableError, match=r"attempts over .* s\). Check ALLOY_BASE_URL") as caught,
    ):
        client.session_me()

    assert client.requests_made >= 2
    assert sum(sleeps) <= UNREACHED_RETRY_SECONDS < client.max_retry_seconds
    assert caught.value.attempts == client.requests_made


def test_once_alloy_has_answered_a_refused_connection_is_an_outage_and_gets_the_whole_budget(
    sleeps: list[float],
) -> None:
    with FakeAlloyServer(api_key=API_KEY) as server, AlloyClient(server.url, API_KEY, fail_fast=True) as client:
        client.session_me()
        server.stop()  # Alloy restarting: nothing listens for a while
        client.max_retry_seconds = 30
        client._sleep = sleeps.append  # record the waits rather than sleep them
        with pytest.raises(AlloyUnavailableError) as caught:
            client.session_me()

    assert not isinstance(caught.value, AlloyUnreachableError)
    assert "the connection was refused" in caught.value.message
    assert sum(sleeps) > UNREACHED_RETRY_SECONDS


def test_a_connect_timeout_is_told_as_no_answer() -> None:
    assert (
        connect_cause(httpx.ConnectTimeout("timed out"), "api.example", 3) == "no answer to the connection within 3 s"
    )


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("api.uk.alloyapp.io", "ALLOY_BASE_URL must be an http(s) URL such as https://api.uk.alloyapp.io, not "),
        ("ftp://api.uk.alloyapp.io", "ALLOY_BASE_URL must be an http(s) URL"),
        ("https://", "ALLOY_BASE_URL must be an http(s) URL"),
        ("https://api.uk.alloyapp.io:99999", "ALLOY_BASE_URL has port 99999, but ports run from 1 to 65535."),
        ("https://api.uk.alloyapp.io:0", "ALLOY_BASE_URL has port 0"),
        ("https://user:hunter2@api.uk.alloyapp.io:x", "ALLOY_BASE_URL is not a valid URL"),
    ],
)
def test_a_base_url_the_client_cannot_use_is_refused_naming_the_setting(base_url: str, message: str) -> None:
    with pytest.raises(AlloyError) as caught:
        AlloyClient(base_url, API_KEY)

    assert caught.value.message.startswith(message)
    assert "hunter2" not in caught.value.message


@pytest.mark.parametrize(
    "key",
    [f"{API_KEY}\n", f" {API_KEY}", f"{API_KEY[:8]} {API_KEY[9:]}", f"{API_KEY[:-1]}é", f"{API_KEY}\x00", ""],
)
def test_a_key_an_http_header_cannot_carry_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(AlloyError, match="ALLOY_API_KEY") as caught:
        AlloyClient("https://api.uk.alloyapp.io", key)

    assert API_KEY[:8] not in caught.value.message


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"timeout": 0}, "ALLOY_TIMEOUT"),
        ({"timeout": float("nan")}, "ALLOY_TIMEOUT"),
        ({"page_size": 0}, "ALLOY_PAGE_SIZE"),
    ],
)
def test_settings_out_of_range_are_refused_naming_them(kwargs: dict[str, float], setting: str) -> None:
    with pytest.raises(AlloyError, match=setting):
        AlloyClient("https://api.uk.alloyapp.io", API_KEY, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(base_url=st.text(max_size=60) | st.from_regex(r"https?://[^/]{0,20}(/[ -~]{0,20})?", fullmatch=True))
def test_any_base_url_gives_a_working_client_or_an_alloy_error(base_url: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"userSession": {}})

    try:
        client = AlloyClient(base_url, API_KEY, transport=httpx.MockTransport(handler), max_retry_seconds=0)
    except AlloyError as exc:
        assert "ALLOY_BASE_URL" in exc.message
        return
    with client, contextlib.suppress(AlloyError):
        client.session_me()


def test_an_http_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(
    server: FakeAlloyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake answers a proxy's absolute-form request line like any other: it stands in for the proxy.
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    with AlloyClient("http://alloy.invalid", API_KEY, fail_fast=True) as client:
        assert "userSession" in client.session_me()

    monkeypatch.setenv("NO_PROXY", "alloy.invalid")
    with (
        AlloyClient("http://alloy.invalid", API_KEY, fail_fast=True) as client,
        pytest.raises(AlloyUnreachableError, match="does not resolve"),
    ):
        client.session_me()


def test_a_socks_proxy_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret@proxy.example:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    with pytest.raises(AlloyError, match=r"not an HTTP proxy.*NO_PROXY") as caught:
        AlloyClient("https://api.uk.alloyapp.io", API_KEY)
    assert "secret" not in caught.value.message
