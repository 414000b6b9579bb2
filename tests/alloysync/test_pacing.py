"""One rate budget for the deployment: DatabasePacer shares Alloy's limit between processes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection, transaction

from alloysync.client import AlloyClient, ItemQuery, PacingPolicy
from alloysync.fake_alloy import SAMPLE_DESIGN_CODE, FakeAlloyServer
from alloysync.models import RateBudget
from alloysync.pacing import DatabasePacer, shared_pacer
from tests.alloysync.client.helpers import API_KEY, NOW, Clock, numbered_items

pytestmark = [pytest.mark.timeout(120), pytest.mark.django_db(transaction=True)]

QUERY = "POST /api/aqs/query"


def budget(endpoint: str = QUERY) -> tuple[int, datetime]:
    row = RateBudget.objects.get(endpoint=endpoint)
    return row.remaining, row.reset_at


def in_threads(count: int, work: Callable[[], None]) -> None:
    """Run ``work`` in ``count`` threads at once, each with its own database connection."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_it_stores_what_alloy_said_and_takes_one_per_request() -> None:
    pacer = DatabasePacer(clock=Clock())
    pacer.after(QUERY, 80, NOW + timedelta(seconds=30))

    assert pacer.before(QUERY) == 0.0
    assert pacer.before(QUERY) == 0.0
    assert budget() == (78, NOW + timedelta(seconds=30))


def test_it_waits_when_low_and_spreads_what_is_left() -> None:
    pacer = DatabasePacer(clock=Clock())
    pacer.after(QUERY, 25, NOW + timedelta(seconds=40))

    assert pacer.before(QUERY) == pytest.approx(40 / 20)  # 25 left, 5 in reserve

    RateBudget.objects.filter(endpoint=QUERY).update(remaining=5)
    assert pacer.before(QUERY) == pytest.approx(40.5)  # at the reserve: until the reset, and a margin


def test_it_knows_nothing_of_an_endpoint_it_has_no_row_for() -> None:
    assert DatabasePacer(clock=Clock()).before(QUERY) == 0.0
    assert not RateBudget.objects.exists()


def test_a_reset_in_the_past_means_a_whole_budget_and_the_next_answer_starts_a_window() -> None:
    clock = Clock()
    pacer = DatabasePacer(clock=clock)
    pacer.after(QUERY, 0, NOW + timedelta(seconds=5))

    clock.advance(6)
    assert pacer.before(QUERY) == 0.0

    pacer.after(QUERY, 99, NOW + timedelta(seconds=65))
    assert budget() == (99, NOW + timedelta(seconds=65))


def test_within_a_window_the_lower_count_wins_and_a_stale_answer_is_ignored() -> None:
    pacer = DatabasePacer(clock=Clock())
    reset = NOW + timedelta(seconds=30)
    pacer.after(QUERY, 40, reset)
    pacer.before(QUERY)
    pacer.before(QUERY)

    pacer.after(QUERY, 39, reset + timedelta(milliseconds=3))  # one still in flight
    assert budget() == (38, reset)

    pacer.after(QUERY, 90, reset + timedelta(seconds=60))
    pacer.after(QUERY, 3, reset)  # from the window before, slow to arrive
    assert budget() == (90, reset + timedelta(seconds=60))


def test_two_processes_sharing_one_budget_never_take_more_than_is_left() -> None:
    policy = PacingPolicy(spread_below_fraction=0)  # only the reserve: every take is all or nothing
    DatabasePacer(policy, clock=Clock()).after(QUERY, 40, NOW + timedelta(seconds=30))
    served: list[float] = []  # waits the shared budget decided
    fell_back = 0
    lock = threading.Lock()

    def one_process() -> None:
        nonlocal fell_back
        pacer = DatabasePacer(policy, clock=Clock())
        for _ in range(30):
            wait = pacer.before(QUERY)
            with lock:
                served.append(wait)
        with lock:
            fell_back += pacer.fallbacks

    in_threads(2, one_process)

    # SQLite's in-memory test database answers "table is locked" at once to a second writer (a file
    # waits its turn): such a take falls back to the process's own pacer, which is the design.
    assert fell_back == 0 or connection.vendor == "sqlite"
    assert fell_back < 60 - 35
    assert served.count(0.0) - fell_back <= 40 - 5  # never below the reserve, whoever asked
    assert budget()[0] == 5


def test_a_database_error_never_fails_a_request_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    pacer = DatabasePacer(clock=Clock())
    broken = mock.patch.object(RateBudget.objects, "filter", side_effect=OperationalError("no such table"))

    with broken, caplog.at_level(logging.DEBUG, logger="alloysync.pacing"):
        pacer.after(QUERY, 5, NOW + timedelta(seconds=30))
        waits = [pacer.before(QUERY) for _ in range(3)]

    assert waits[0] == pytest.approx(30.5)  # paced by what this process saw
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no such table" in warnings[0].getMessage()


def test_inside_a_transaction_it_paces_locally_and_leaves_the_row_alone() -> None:
    pacer = DatabasePacer(clock=Clock())
    pacer.after(QUERY, 10, NOW + timedelta(seconds=30))

    with transaction.atomic():
        pacer.after(QUERY, 5, NOW + timedelta(seconds=30))
        wait = pacer.before(QUERY)

    assert wait == pytest.approx(30.5)  # at the reserve: until the reset
    assert budget() == (10, NOW + timedelta(seconds=30))


def test_the_shared_pacer_is_one_per_process() -> None:
    assert isinstance(shared_pacer(), DatabasePacer)
    assert shared_pacer() is shared_pacer()


@pytest.mark.slow
def test_two_clients_reading_250_pages_each_share_the_limit_without_a_429() -> None:
    # Alloy's 100 a minute, in windows of a second so that the test takes seconds.
    items = numbered_items(250)
    query = ItemQuery(SAMPLE_DESIGN_CODE)
    clients: list[AlloyClient] = []
    read: list[int] = []

    with FakeAlloyServer(items, api_key=API_KEY, rate_limit=100, rate_window=1.0) as server:

        def one_process() -> None:
            with AlloyClient(server.url, API_KEY, page_size=2, pacer=DatabasePacer()) as client:
                clients.append(client)
                read.append(sum(1 for _ in client.iter_items(query)))

        in_threads(2, one_process)

    assert read == [250, 250]
    assert server.rate_limited == {}
    assert all(client.paced_seconds > 0 for client in clients)
    assert sum(client.requests_made for client in clients) == 2 * 126
