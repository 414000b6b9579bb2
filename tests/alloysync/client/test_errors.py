"""Failures become AlloyErrors that say what to check, and never show the key."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from alloysync.client import AlloyClient, ItemQuery
from alloysync.client.errors import (
    AlloyAuthError,
    AlloyError,
    AlloyRequestError,
    AlloyResponseError,
    AlloyUnavailableError,
)
from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY, FLAGGED_JOBS, mock_client

pytestmark = pytest.mark.timeout(60)


def test_a_401_says_to_check_alloy_api_key_without_showing_it(server: FakeAlloyServer) -> None:
    wrong_key = "0d5e0a1c-dead-beef-0000-123456789abc"

    with AlloyClient(server.url, wrong_key) as client, pytest.raises(AlloyAuthError) as caught:
        list(client.iter_items(ALL_JOBS))

    error = caught.value
    assert "ALLOY_API_KEY" in error.message
    assert wrong_key not in str(error)
    assert API_KEY not in str(error)
    assert error.status_code == 401
    assert error.category == "UserUnauthorized"
    assert error.permanent
    assert client.requests_made == 1


def test_an_invalid_query_says_which_settings_to_check(client: AlloyClient) -> None:
    with pytest.raises(AlloyRequestError) as caught:
        client.count_items(ItemQuery("designs_typo_65f0c0ffee0000000000ffff"))

    error = caught.value
    assert error.category == "AqsInvalidQuery"
    assert error.status_code == 400
    assert "ALLOY_JOB_DESIGN" in error.message
    assert "does not exist" in error.message  # Alloy's own message


def test_a_non_json_success_is_a_response_error() -> None:
    with (
        mock_client(lambda request: httpx.Response(200, text="<html>maintenance</html>"), []) as client,
        pytest.raises(AlloyResponseError, match="not JSON"),
    ):
        client.session_me()


def test_a_non_json_error_body_still_gives_a_clear_error() -> None:
    with (
        mock_client(lambda request: httpx.Response(404, text="Not Found"), []) as client,
        pytest.raises(AlloyRequestError, match="HTTP 404"),
    ):
        client.session_me()


def test_a_redirect_is_not_followed(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "https://elsewhere.example/api/session/me"})

    with mock_client(handler, sleeps) as client, pytest.raises(AlloyResponseError, match="ALLOY_BASE_URL"):
        client.session_me()


def test_errors_are_alloy_errors_only(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.fail_page(1, "broken", times=None)

    with (
        AlloyClient(server.url, API_KEY, max_retry_seconds=3, sleep=sleeps.append) as client,
        pytest.raises(AlloyError) as caught,
    ):
        list(client.iter_items(ALL_JOBS))

    assert isinstance(caught.value, AlloyUnavailableError)
    assert "RemoteProtocolError" in caught.value.message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_the_key_never_appears_in_repr_logs_or_errors(
    server: FakeAlloyServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for chatty in ("httpx", "httpcore"):  # quiet in settings; opened up here so their lines are checked too
        caplog.set_level(logging.DEBUG, logger=chatty)
    errors: list[AlloyError] = []
    with AlloyClient(server.url, API_KEY, timeout=0.3, max_retry_seconds=10, sleep=sleeps.append) as client:
        server.faults.fail_next(1, status=503)
        server.faults.rate_limit_next(1, header="reset", seconds=1)
        server.faults.hang_next(1, seconds=2)
        list(client.iter_items(FLAGGED_JOBS))
        server.faults.fail_next(100, status=500)
        with pytest.raises(AlloyUnavailableError) as unavailable:
            client.session_me()
        errors.append(unavailable.value)
        texts = [repr(client), str(client.__dict__.get("_http"))]
    with AlloyClient(server.url, API_KEY + "-wrong") as wrong, pytest.raises(AlloyAuthError) as refused:
        server.faults.clear()
        wrong.session_me()
    errors.append(refused.value)

    assert "retrying in" in caplog.text  # the retries were logged...
    assert "HTTP Request" in caplog.text  # ...and so were httpx's own request lines
    for text in [caplog.text, *texts, *(str(error) for error in errors), *(repr(error) for error in errors)]:
        assert API_KEY not in text


ECHOED = f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            lambda: httpx.Response(
                429, headers={"Retry-After": ECHOED}, json={"category": "RateLimited", "message": f"{ECHOED} is busy"}
            ),
            id="429-echoing-the-key-in-retry-after-and-message",
        ),
        # Before: the first 80 bytes were cut, then redacted: 15 characters of the key went out.
        pytest.param(lambda: httpx.Response(503, text="x" * 65 + API_KEY), id="503-key-across-the-snippet-cut"),
        pytest.param(lambda: httpx.Response(200, text="y" * 60 + API_KEY), id="200-not-json-key-across-the-cut"),
        pytest.param(
            lambda: httpx.Response(301, headers={"Location": f"https://elsewhere.example/?key={API_KEY}"}),
            id="redirect-carrying-the-key",
        ),
        pytest.param(
            lambda: httpx.Response(400, json={"category": "AqsInvalidQuery", "message": ECHOED * 50}),
            id="400-message-made-of-keys",
        ),
        pytest.param(
            lambda: httpx.Response(200, content=f'[[[["{API_KEY}", '.encode() + b"[" * 300 + b"]" * 304),
            id="too-deep-with-the-key-inside",
        ),
    ],
)
def test_a_server_echoing_the_key_never_gets_it_into_errors_or_logs(
    answer: Any, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for chatty in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=chatty)

    with (
        mock_client(lambda request: answer(), sleeps, max_retry_seconds=5) as client,
        pytest.raises(AlloyError) as caught,
    ):
        client.session_me()

    for text in (caplog.text, str(caught.value), repr(caught.value), caught.value.message):
        assert API_KEY[:8] not in text  # not the key, nor the first part of one cut short
