"""The client paces itself by Alloy's rate-limit headers, before Alloy has to say 429."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alloysync.client import AlloyClient, AlloyUnavailableError
from alloysync.client.pacing import (
    MAX_PACING_WAIT_SECONDS,
    LocalPacer,
    PacingPolicy,
    endpoint_key,
    read_rate_limit,
)
from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY, NOW, Clock, mock_client, numbered_items

pytestmark = pytest.mark.timeout(60)

QUERY = "POST /api/aqs/query"


class RecordingPacer:
    """A pacer that asks for a fixed wait and records what every answer said."""

    def __init__(self, wait: float = 0.0) -> None:
        self.wait = wait
        self.befores: list[str] = []
        self.afters: list[tuple[str, int | None, datetime | None]] = []

    def before(self, endpoint: str) -> float:
        self.befores.append(endpoint)
        return self.wait

    def after(self, endpoint: str, remaining: int | None, reset_at: datetime | None) -> None:
        self.afters.append((endpoint, remaining, reset_at))


def alloy_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z"


def rate_headers(remaining: int, reset_in: float) -> dict[str, str]:
    reset = datetime.now(UTC) + timedelta(seconds=reset_in)
    return {"X-Rate-Limit-Remaining": str(remaining), "X-Rate-Limit-Reset": alloy_time(reset)}


# --- the policy -----------------------------------------------------------------------------------


def test_it_does_not_wait_while_plenty_is_left() -> None:
    assert PacingPolicy().wait(60, NOW + timedelta(seconds=50), NOW) == 0.0


def test_it_spreads_what_is_left_above_the_reserve_over_the_time_to_the_reset() -> None:
    # 45 left, 5 kept in reserve: 40 requests over 20 s, one every half second.
    assert PacingPolicy().wait(45, NOW + timedelta(seconds=20), NOW) == pytest.approx(0.5)


def test_it_waits_for_the_reset_at_the_reserve() -> None:
    policy = PacingPolicy()

    assert policy.reserve(100) == 5
    assert policy.wait(5, NOW + timedelta(seconds=12), NOW) == pytest.approx(12 + policy.reset_margin_seconds)


def test_the_reserve_is_at_least_two() -> None:
    assert PacingPolicy().reserve(10) == 2


def test_it_never_waits_on_a_reset_in_the_past() -> None:
    assert PacingPolicy().wait(0, NOW - timedelta(seconds=1), NOW) == 0.0
    assert PacingPolicy().wait(0, NOW, NOW) == 0.0


def test_no_wait_is_longer_than_the_cap() -> None:
    assert PacingPolicy().wait(0, NOW + timedelta(hours=1), NOW) == MAX_PACING_WAIT_SECONDS


# --- the in-process pacer -------------------------------------------------------------------------


def test_a_pacer_that_knows_nothing_does_not_wait() -> None:
    assert LocalPacer(clock=Clock()).before(QUERY) == 0.0


def test_each_request_sent_counts_as_one_less_until_the_next_answer() -> None:
    pacer = LocalPacer(clock=Clock())
    pacer.after(QUERY, 7, NOW + timedelta(seconds=30))

    waits = [pacer.before(QUERY) for _ in range(3)]

    assert waits[0] == pytest.approx(30 / 2)  # 7 left, 5 in reserve: spread 2 over 30 s
    assert waits[1] == pytest.approx(30 / 1)
    assert waits[2] == pytest.approx(30.5)  # at the reserve: until the reset
    assert pacer.remaining(QUERY) == 4


def test_endpoints_are_paced_apart() -> None:
    pacer = LocalPacer(clock=Clock())
    pacer.after(QUERY, 0, NOW + timedelta(seconds=30))

    assert pacer.before("GET /api/item/{id}") == 0.0
    assert pacer.before(QUERY) > 0


def test_a_new_window_gives_a_whole_budget_again() -> None:
    clock = Clock()
    pacer = LocalPacer(clock=clock)
    pacer.after(QUERY, 0, NOW + timedelta(seconds=10))

    clock.advance(10)

    assert pacer.before(QUERY) == 0.0


def test_within_a_window_the_lower_count_wins_and_a_later_window_replaces_it() -> None:
    pacer = LocalPacer(clock=Clock())
    reset = NOW + timedelta(seconds=30)
    pacer.after(QUERY, 40, reset)
    pacer.before(QUERY)
    pacer.before(QUERY)

    pacer.after(QUERY, 39, reset + timedelta(milliseconds=3))  # the answer to the first: one still in flight
    assert pacer.remaining(QUERY) == 38

    pacer.after(QUERY, 20, reset)  # someone else is using the same endpoint
    assert pacer.remaining(QUERY) == 20

    pacer.after(QUERY, 99, reset + timedelta(seconds=60))
    assert pacer.remaining(QUERY) == 99

    pacer.after(QUERY, 5, reset)  # slow to arrive, from the window before
    assert pacer.remaining(QUERY) == 99


def test_half_a_report_changes_nothing() -> None:
    pacer = LocalPacer(clock=Clock())

    pacer.after(QUERY, 0, None)
    pacer.after(QUERY, None, NOW + timedelta(seconds=30))

    assert pacer.remaining(QUERY) is None
    assert pacer.before(QUERY) == 0.0


def test_a_larger_limit_seen_moves_the_reserve_and_the_spreading() -> None:
    pacer = LocalPacer(clock=Clock())
    pacer.after(QUERY, 299, NOW + timedelta(seconds=59))
    pacer.after(QUERY, 60, NOW + timedelta(seconds=59))

    assert pacer.limit(QUERY) == 300
    assert pacer.before(QUERY) > 0  # 60 of 300 is low; of 100 it would not be


def test_threads_sharing_a_pacer_never_take_more_than_is_left() -> None:
    pacer = LocalPacer(PacingPolicy(spread_below_fraction=0), clock=Clock())
    pacer.after(QUERY, 50, NOW + timedelta(seconds=30))
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(20):
            wait = pacer.before(QUERY)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert waits.count(0.0) == 50 - 5
    assert pacer.remaining(QUERY) == 50 - 160


# --- reading the headers --------------------------------------------------------------------------


def test_it_reads_alloys_headers() -> None:
    headers = httpx.Headers({"X-Rate-Limit-Remaining": "99", "X-Rate-Limit-Reset": "2026-11-29T10:00:42.0232125Z"})

    assert read_rate_limit(headers, NOW) == (99, datetime(2026, 11, 29, 10, 0, 42, 23212, tzinfo=UTC))


@pytest.mark.parametrize(
    ("remaining", "reset"),
    [
        ("-1", "yesterday"),
        ("1e3", "2026-13-29T10:00:42Z"),
        ("", ""),
        ("99999999999999999999", "9" * 5000),
        ("NaN", "2026-11-29T12:00:00Z"),  # two hours ahead: not a minute's window
    ],
)
def test_garbage_headers_are_no_information(remaining: str, reset: str) -> None:
    headers = httpx.Headers({"X-Rate-Limit-Remaining": remaining, "X-Rate-Limit-Reset": reset})

    assert read_rate_limit(headers, NOW) == (None, None)


@given(st.binary(max_size=80), st.binary(max_size=80))
def test_no_header_makes_reading_raise(remaining: bytes, reset: bytes) -> None:
    headers = httpx.Headers({"X-Rate-Limit-Remaining": remaining, "X-Rate-Limit-Reset": reset})

    read_rate_limit(headers, NOW)


def test_endpoints_leave_out_the_item_id_and_the_query_string() -> None:
    assert endpoint_key("get", "/api/item/642062376be3a0036bbbb64b") == "GET /api/item/{id}"
    assert endpoint_key("PUT", "/api/item/64%2F20") == "PUT /api/item/{id}"
    assert endpoint_key("POST", "/api/aqs/query?page=2&pageSize=100") == QUERY
    assert endpoint_key("GET", "/api/session/me") == "GET /api/session/me"


# --- the client -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 404, 429, 503])
def test_every_answer_with_the_headers_updates_the_pacer(status: int) -> None:
    pacer = RecordingPacer()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"userSession": {}}, headers=rate_headers(17, 30))

    with mock_client(handler, [], pacer=pacer, max_retry_seconds=0) as client:
        try:
            client.session_me()
        except AlloyUnavailableError:
            pass
        except Exception as exc:  # noqa: BLE001 - a 404 is a request error; only the pacing matters here
            assert status == 404, exc

    [(endpoint, remaining, reset_at)] = pacer.afters
    assert (endpoint, remaining) == ("GET /api/session/me", 17)
    assert reset_at is not None


def test_the_pacers_waits_are_slept_and_counted() -> None:
    pacer = RecordingPacer(wait=1.5)
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aqs/statistics":
            return httpx.Response(200, json={"results": [{"value": {"value": 0.0}}]})
        return httpx.Response(200, json={"page": 1, "pageSize": 100, "results": []})

    with mock_client(handler, sleeps, pacer=pacer) as client:
        list(client.iter_items(ALL_JOBS))
        client.count_items(ALL_JOBS)

    assert pacer.befores == [QUERY, "POST /api/aqs/statistics"]
    assert sleeps == [1.5, 1.5]
    assert client.paced_seconds == 3.0
    assert client.paced_requests == 2
    assert client.requests_made == 2


def test_a_pacers_nonsense_is_never_slept() -> None:
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"userSession": {}})

    for wait in (float("nan"), float("-inf"), float("inf"), -3.0, 1e9):
        with mock_client(handler, sleeps, pacer=RecordingPacer(wait)) as client:
            client.session_me()

    assert sleeps == [MAX_PACING_WAIT_SECONDS]


def test_pacing_waits_do_not_use_up_the_retry_budget() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, json={"userSession": {}})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    # A pacing wait of 60 s (really slept would be the same) and a retry budget of 5 s: the retry happens.
    with mock_client(handler, [], pacer=RecordingPacer(60.0), max_retry_seconds=5) as client:
        client.session_me()

    assert client.requests_made == 2


def test_a_client_reading_fast_slows_down_before_the_limit() -> None:
    sent = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        # An Alloy with 100 a minute, 50 s of the minute left when the read starts.
        return httpx.Response(200, json={"userSession": {}}, headers=rate_headers(100 - sent, 50))

    sleeps: list[float] = []
    with mock_client(handler, sleeps) as client:  # the default pacer
        for _ in range(60):
            client.session_me()

    assert sleeps, "no pacing at all"
    # Free while at least half the minute's requests are left: the first request (nothing known yet)
    # and those that saw 99 down to 50; the nine that saw 49 down to 41 are spread.
    assert len(sleeps) == 9
    assert all(0 < wait < 5 for wait in sleeps)  # spread, not one long stall
    assert client.paced_seconds == pytest.approx(sum(sleeps))


def test_the_key_is_in_no_endpoint() -> None:
    pacer = RecordingPacer()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"userSession": {}}, headers=rate_headers(3, 30))

    with mock_client(handler, [], pacer=pacer) as client:
        client.session_me()

    assert API_KEY not in repr(pacer.befores + pacer.afters)
    assert API_KEY not in repr(client)


def test_a_default_pacer_is_the_clients_own() -> None:
    with (
        AlloyClient("https://api.uk.alloyapp.io", API_KEY) as first,
        AlloyClient("https://api.uk.alloyapp.io", API_KEY) as second,
    ):
        assert isinstance(first.pacer, LocalPacer)
        assert first.pacer is not second.pacer


def test_a_client_reading_250_pages_under_alloys_limit_paces_instead_of_hitting_429() -> None:
    # Alloy's 100 a minute per endpoint, enforced, in windows of a second so the test takes seconds.
    with (
        FakeAlloyServer(numbered_items(250), api_key=API_KEY, rate_limit=100, rate_window=1.0) as server,
        AlloyClient(server.url, API_KEY, page_size=1) as client,
    ):
        read = sum(1 for _ in client.iter_items(ALL_JOBS))

    assert read == 250
    assert server.rate_limited == {}
    assert client.requests_made == 251  # not one retried
    assert client.paced_requests > 0
    assert 0 < client.paced_seconds < 10


def test_one_answer_that_lies_about_the_limit_does_not_slow_the_windows_after_it():
    # Found by trying it: one "X-Rate-Limit-Remaining: 999999999" made every honest window after it
    # look nearly spent, and each request waited for the reset, for the life of the process.
    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    clock = [start]
    pacer = LocalPacer(clock=lambda: clock[0])
    endpoint = "POST /api/aqs/query"
    pacer.after(endpoint, 999_999_999, start + timedelta(seconds=60))
    clock[0] = start + timedelta(seconds=61)
    pacer.after(endpoint, 99, clock[0] + timedelta(seconds=59))
    assert pacer.before(endpoint) == 0.0
    assert pacer.limit(endpoint) == 100
