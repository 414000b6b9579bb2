"""Retry hints never cause a storm: whatever Retry-After or X-Rate-Limit-Reset says, waits stay sane."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloysync.client import (
    MAX_WAIT_SECONDS,
    MIN_WAIT_SECONDS,
    AlloyClient,
    AlloyUnavailableError,
    retry_hint,
)
from alloysync.client.errors import TransientFault
from alloysync.client.policy import MAX_HINT_SECONDS, RetryBudget
from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY

pytestmark = pytest.mark.timeout(60)


def http_date(offset: timedelta) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + offset, usegmt=True)


def test_a_429_saying_retry_after_minus_one_backs_off_instead_of_storming(server: FakeAlloyServer) -> None:
    # Before: the client retried at once, 2,297 requests in 3 s (about 1,000 a second for 120 s).
    server.faults.rate_limit_next(100_000, header="none", retry_after="-1")

    with (
        AlloyClient(server.url, API_KEY, max_retry_seconds=3) as client,  # real sleeps
        pytest.raises(AlloyUnavailableError) as caught,
    ):
        client.session_me()

    assert 2 <= client.requests_made <= 4
    assert len(server.requests) == client.requests_made
    assert "Retry-After '-1' ignored" in caught.value.message


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "0",
        "0.0001",  # "retry now" in disguise
        "NaN",
        "inf",
        "-inf",
        "1e400",
        "99999999999",  # three thousand years: nonsense, not a plan
        "soon",
        "",
        "Wed, 21 Oct 2015 07:28:00 GMT",  # a date in the past
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 99 Foo 2024 99:99:99 GMT",
        "9" * 5000,
    ],
)
def test_an_unusable_retry_after_falls_back_to_the_backoff(
    server: FakeAlloyServer, client: AlloyClient, sleeps: list[float], value: str
) -> None:
    server.faults.rate_limit_next(1, header="none", retry_after=value)
    server.faults.fail_next(1, status=503, retry_after=value)

    assert client.count_items(ALL_JOBS) == 13

    first, second = sleeps
    assert 1.0 <= first <= 2.0  # the back-off's 1 s, 2 s ... with up to 1 s of jitter
    assert 2.0 <= second <= 3.0


def test_an_unusable_retry_after_on_429_gives_way_to_x_rate_limit_reset(
    server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]
) -> None:
    server.faults.rate_limit_next(1, header="retry-after", retry_after="-1")  # the reset is the minute's end

    assert client.count_items(ALL_JOBS) == 13

    [wait] = sleeps
    assert MIN_WAIT_SECONDS <= wait <= 60.0


@pytest.mark.parametrize(("retry_after", "low", "high"), [("7", 7.0, 7.0), (None, 28.0, 31.0)])
def test_a_503_with_retry_after_is_honoured_in_either_form(
    server: FakeAlloyServer, client: AlloyClient, sleeps: list[float], retry_after: str | None, low: float, high: float
) -> None:
    server.faults.fail_next(1, status=503, retry_after=retry_after or http_date(timedelta(seconds=30)))

    assert client.count_items(ALL_JOBS) == 13

    [wait] = sleeps
    assert low <= wait <= high


def test_retry_after_on_other_5xx_is_not_a_hint(
    server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]
) -> None:
    server.faults.fail_next(1, status=502, retry_after="30")

    assert client.count_items(ALL_JOBS) == 13

    [wait] = sleeps
    assert 1.0 <= wait <= 2.0


def test_a_hint_beyond_the_budget_left_ends_the_retrying_at_once(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.rate_limit_next(5, retry_after="3600")

    with (
        AlloyClient(server.url, API_KEY, max_retry_seconds=120, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnavailableError) as caught,
    ):
        client.count_items(ALL_JOBS)

    assert sleeps == []
    assert client.requests_made == 1
    message = caught.value.message
    assert "Alloy asked for 3600 s before a retry" in message
    assert "120 s retry budget" in message and "did not wait" in message


def test_a_503_hint_beyond_the_budget_left_ends_the_retrying_too(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.fail_next(5, status=503, retry_after=http_date(timedelta(minutes=30)))

    with (
        AlloyClient(server.url, API_KEY, max_retry_seconds=60, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnavailableError, match=r"HTTP 503.*asked for 1[78]\d\d s before a retry"),
    ):
        client.session_me()
    assert sleeps == []


header_values = st.one_of(
    st.binary(max_size=80).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda number: repr(number).encode()),
    st.integers(min_value=-(10**30), max_value=10**30).map(lambda number: str(number).encode()),
    # Hypothesis takes naive bounds and adds the zone.
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(  # noqa: DTZ001
        lambda when: email.utils.format_datetime(when, usegmt=True).encode()
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    status=st.sampled_from([429, 503, 500]),
    retry_after=header_values,
    reset=header_values,
    attempt=st.integers(min_value=1, max_value=10**6),
)
def test_any_hint_gives_a_finite_wait_within_the_floor_and_the_cap(
    status: int, retry_after: bytes, reset: bytes, attempt: int
) -> None:
    headers = httpx.Headers({b"Retry-After": retry_after, b"X-Rate-Limit-Reset": reset})

    hint = retry_hint(status, headers)
    wait = RetryBudget(120, lambda seconds: None).wait_for(TransientFault("x", wait_hint=hint), attempt)

    assert hint is None or (math.isfinite(hint) and MIN_WAIT_SECONDS <= hint <= MAX_HINT_SECONDS)
    assert math.isfinite(wait)
    assert MIN_WAIT_SECONDS <= wait <= MAX_WAIT_SECONDS
