"""Alloy's answers cannot exhaust the client: size once decompressed, JSON depth and numbers are bounded."""

from __future__ import annotations

import gzip
import json
import math
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloysync.client import MAX_ANSWER_BYTES, AlloyClient, AlloyResponseError, AlloyUnavailableError
from alloysync.client.answers import MAX_JSON_DEPTH, parse_json, read_answer
from alloysync.fake_alloy import FakeAlloyServer
from alloysync.fake_alloy.hostile import hostile_page
from tests.alloysync.client.helpers import ALL_JOBS, API_KEY, mock_client, query_pages

pytestmark = pytest.mark.timeout(120)

MIB = 1024 * 1024


@pytest.fixture(autouse=True, scope="module")
def _bomb_built() -> None:
    # The fake builds its gzip bomb once (a second or two of compression), before any client waits for it.
    hostile_page("gzip-bomb")


def no_redaction(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("deep", f"is nested deeper than {MAX_JSON_DEPTH} levels"),  # before: RecursionError
        ("huge-number", "holds a number 5,000 characters long"),  # before: ValueError (int digits limit)
        ("oversize", "is larger than 32 MiB once decompressed"),
        ("gzip-bomb", "is larger than 32 MiB once decompressed"),  # before: 300 MiB inflated, 662 MB RSS
    ],
)
def test_a_hostile_page_is_a_clear_response_error_not_retried(
    server: FakeAlloyServer, client: AlloyClient, fault: str, message: str
) -> None:
    server.faults.fail_page(2, fault, times=None)

    with pytest.raises(AlloyResponseError) as caught:
        list(client.iter_items(ALL_JOBS))

    assert caught.value.message.startswith("Alloy's answer to POST /api/aqs/query ")
    assert message in caught.value.message
    assert caught.value.permanent
    assert query_pages(server) == [1, 2]


def test_a_gzip_bomb_never_inflates_beyond_the_limit_in_memory(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.fail_page(1, "gzip-bomb")
    tracemalloc.start()
    try:
        with pytest.raises(AlloyResponseError, match="larger than 32 MiB"):
            client.count_items(ALL_JOBS) and list(client.iter_items(ALL_JOBS))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # The body read so far (the limit) plus one decompression step; the bomb inflates to 300 MiB.
    assert peak < MAX_ANSWER_BYTES + 8 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_a_smaller_limit_can_be_set_per_client(server: FakeAlloyServer) -> None:
    with (
        AlloyClient(server.url, API_KEY, max_answer_bytes=1000, page_size=100) as client,
        pytest.raises(AlloyResponseError, match="larger than 1,000 bytes once decompressed"),
    ):
        list(client.iter_items(ALL_JOBS))


def test_a_gzip_compressed_answer_is_read_as_usual(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.gzip = True

    assert len(list(client.iter_items(ALL_JOBS))) == 13
    assert client.count_items(ALL_JOBS) == 13


def test_an_error_answer_nested_100000_deep_is_still_just_a_5xx(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=b"[" * 100_000 + b"]" * 100_000)

    with mock_client(handler, sleeps, max_retry_seconds=5) as client, pytest.raises(AlloyUnavailableError) as caught:
        client.session_me()

    assert "HTTP 503" in caught.value.message
    assert len(caught.value.message) < 400


def test_an_encoding_alloysync_did_not_ask_for_is_refused_by_name() -> None:
    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"\x1b\x00\x00"

    response = httpx.Response(200, headers={"Content-Encoding": "br"}, stream=Body())

    with pytest.raises(AlloyResponseError, match="compressed as 'br', which alloysync did not ask for"):
        read_answer(response, "GET /api/session/me", MAX_ANSWER_BYTES)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage!", "is not valid gzip data"),
        (gzip.compress(b'{"userSession": {}}')[:-12], "breaks off in the middle of its gzip data"),
    ],
)
def test_a_corrupt_or_cut_gzip_body_is_a_response_error(data: bytes, message: str) -> None:
    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield data

    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Body())

    with pytest.raises(AlloyResponseError, match=message):
        read_answer(response, "GET /api/session/me", MAX_ANSWER_BYTES)


def test_gzip_members_one_after_another_are_all_read() -> None:
    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield gzip.compress(b'{"userSession": ') + gzip.compress(b'{"username": "x"}}')

    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Body())

    assert (
        read_answer(response, "GET /api/session/me", MAX_ANSWER_BYTES).content == b'{"userSession": {"username": "x"}}'
    )


def test_nan_and_infinity_in_an_item_are_read_for_the_item_to_be_judged(
    server: FakeAlloyServer, client: AlloyClient
) -> None:
    # Safe to parse, not sane values: the item holding them is judged where its values are used
    # (scheduler.stored_values), so one bad item does not fail the whole read.
    server.faults.fail_page(1, "nan")

    first, *others = client.iter_items(ALL_JOBS)

    values = list(first.attributes.values())
    assert values and all(isinstance(value, float) and not math.isfinite(value) for value in values)
    assert len(others) == 12


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" + b"1" * 4301 + b"]", "holds a number 4,301 characters long"),
        (b"[0." + b"1" * 4299 + b"]", "holds a number 4,301 characters long"),
        (b'{"a": ' * 201 + b"1" + b"}" * 201, "nested deeper than 200 levels"),
        (b"\xff\xfe", "is not UTF-8 text"),
        (b"", "is not JSON (empty body)"),
    ],
)
def test_what_json_forbids_or_python_chokes_on_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(AlloyResponseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_json(body, "GET /x", no_redaction)


def test_numbers_python_reads_are_read_as_python_reads_them() -> None:
    body = b"[NaN, Infinity, -Infinity, 1e400, " + b"9" * 4300 + b"]"

    nan, inf, minus_inf, overflow, huge = parse_json(body, "GET /x", no_redaction)

    assert math.isnan(nan) and inf == overflow == math.inf and minus_inf == -math.inf
    assert huge == 10**4300 - 1


def test_depth_counts_brackets_outside_strings_only() -> None:
    text = json.dumps({"note": "[" * 10_000, "nested": [[[[1]]]]}).encode()

    assert parse_json(text, "GET /x", no_redaction)["nested"] == [[[[1]]]]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_within_the_limits_reads_back_the_same(value: object) -> None:
    assert parse_json(json.dumps(value).encode(), "GET /x", no_redaction) == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet='[]{}",:0123456789eE.-+ aNnIfity\\', max_size=300).map(str.encode))
def test_any_bytes_give_a_value_or_a_response_error(body: bytes) -> None:
    try:
        parse_json(body, "GET /x", no_redaction)
    except AlloyResponseError as exc:
        assert exc.message.startswith("Alloy's answer to GET /x ")
