"""Counters kept in the database: many writers, one total, nothing lost."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from django.db import connection, connections
from hypothesis import given
from hypothesis import strategies as st

from scheduler.metrics import CounterAdd, counters_add, counters_read, labels_parse, labels_text, merged
from scheduler.models import MetricCounter

pytestmark = pytest.mark.timeout(120)


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), st.text(max_size=20), max_size=4))
def test_any_label_values_read_back_as_written(labels):
    assert labels_parse(labels_text(labels)) == labels


@pytest.mark.parametrize("text", ['a="x"b="y"', "a=x", 'a="unterminated', '="x"'])
def test_labels_not_in_canonical_form_are_refused(text):
    with pytest.raises(ValueError, match="canonical"):
        labels_parse(text)


def test_labels_are_canonical_whatever_their_order():
    assert labels_text({"b": "2", "a": "1"}) == labels_text({"a": "1", "b": "2"}) == 'a="1",b="2"'


def test_additions_to_one_series_are_merged_and_sorted():
    rows = merged([CounterAdd("m", 'a="2"'), CounterAdd("m", 'a="1"', 2, 1.5), CounterAdd("m", 'a="2"', 1, 0.5)])
    assert rows == [CounterAdd("m", 'a="1"', 2, 1.5), CounterAdd("m", 'a="2"', 2, 0.5)]


@pytest.mark.django_db
def test_counts_add_up_across_calls():
    counters_add([CounterAdd("m", 'a="1"', 2, 1.5), CounterAdd("m", 'a="2"')])
    counters_add([CounterAdd("m", 'a="1"', 3, 0.25)])
    counters_add([])
    assert sorted(counters_read(["m"])["m"], key=str) == [({"a": "1"}, 5, 1.75), ({"a": "2"}, 1, 0.0)]


def _add_many(times: int, barrier: threading.Barrier | None = None) -> None:
    if barrier is not None:
        barrier.wait()
    try:
        for n in range(times):
            # A series every writer shares, and one new to each call: both the update and the insert race.
            counters_add([CounterAdd("race", 'k="shared"', 1, 0.5), CounterAdd("race", f'k="n{n}"')])
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_threads_adding_at_once_lose_nothing():
    threads_count, times = 8, 40
    barrier = threading.Barrier(threads_count)
    threads = [threading.Thread(target=_add_many, args=(times, barrier)) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared = MetricCounter.objects.get(metric="race", labels='k="shared"')
    assert (shared.count, shared.total) == (threads_count * times, threads_count * times * 0.5)
    assert set(
        MetricCounter.objects.filter(metric="race").exclude(labels='k="shared"').values_list("count", flat=True)
    ) == {threads_count}


@pytest.mark.django_db(transaction=True)
def test_processes_adding_at_once_lose_nothing():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's test database is in this process's memory")
    connections.close_all()  # each child opens its own connection, to the test database
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_add_many, args=(50,)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert MetricCounter.objects.get(metric="race", labels='k="shared"').count == 200
    assert MetricCounter.objects.get(metric="race", labels='k="n49"').count == 4
