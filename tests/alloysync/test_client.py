"""The Alloy client against the fake Alloy over a real socket (MockTransport only for exact wire shapes)."""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from alloysync.client import (
    MAX_WAIT_SECONDS,
    AlloyAuthError,
    AlloyClient,
    AlloyError,
    AlloyItem,
    AlloyRequestError,
    AlloyResponseError,
    AlloyUnavailableError,
    ItemQuery,
    build_query_aqs,
    parse_alloy_timestamp,
)
from alloysync.fake_alloy import (
    SAMPLE_DESIGN_CODE,
    SAMPLE_FLAG_ATTRIBUTE,
    SAMPLE_ITEMS_PATH,
    TITLE_ATTRIBUTE,
    FakeAlloyServer,
    load_items,
    make_item,
)

pytestmark = pytest.mark.timeout(60)

API_KEY = "5b1e0c7a-3f2d-4c8e-9a61-0d2f4e6b8c10"
ALL_JOBS = ItemQuery(SAMPLE_DESIGN_CODE)
FLAGGED_JOBS = ItemQuery(SAMPLE_DESIGN_CODE, flag_attribute=SAMPLE_FLAG_ATTRIBUTE)
UNFLAGGED_SAMPLE_ID = "65f0c1a0e4d0a1b2c3d4e50d"


def numbered_items(count: int, *, flagged: bool = True, offset: int = 0) -> list[dict[str, Any]]:
    """Items whose ids sort in creation order (``000...0001``, ``000...0002``...)."""
    return [
        make_item(
            {TITLE_ATTRIBUTE: f"job {n}", SAMPLE_FLAG_ATTRIBUTE: flagged},
            item_id=f"{n:024x}",
        )
        for n in range(offset + 1, offset + count + 1)
    ]


def query_pages(server: FakeAlloyServer) -> list[int | None]:
    return [page for method, path, page in server.requests if path == "/api/aqs/query"]


@pytest.fixture
def server() -> Iterator[FakeAlloyServer]:
    with FakeAlloyServer(load_items(SAMPLE_ITEMS_PATH), api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    """Waits the client asked for; nothing really sleeps."""
    return []


@pytest.fixture
def client(server: FakeAlloyServer, sleeps: list[float]) -> Iterator[AlloyClient]:
    with AlloyClient(server.url, API_KEY, timeout=2.0, page_size=2, sleep=sleeps.append) as alloy:
        yield alloy


def mock_client(handler: Any, sleeps: list[float], **kwargs: Any) -> AlloyClient:
    transport = httpx.MockTransport(handler)
    return AlloyClient("https://api.uk.alloyapp.io", API_KEY, transport=transport, sleep=sleeps.append, **kwargs)


def error_body(status: int, category: str, message: str) -> dict[str, Any]:
    return {
        "category": category,
        "errorCode": "1657279454",
        "errorData": None,
        "httpStatusCode": status,
        "message": message,
    }


# --- paging -------------------------------------------------------------------------------------


def test_it_reads_pages_until_a_short_page() -> None:
    with (
        FakeAlloyServer(numbered_items(5), api_key=API_KEY) as server,
        AlloyClient(server.url, API_KEY, page_size=2) as client,
    ):
        pages: list[tuple[int, int]] = []
        items = list(client.iter_items(ALL_JOBS, on_page=lambda page, count: pages.append((page, count))))

    assert [item.item_id for item in items] == [f"{n:024x}" for n in range(1, 6)]
    assert pages == [(1, 2), (2, 4), (3, 5)]
    assert query_pages(server) == [1, 2, 3]


def test_it_reads_one_empty_page_after_a_full_last_page() -> None:
    with (
        FakeAlloyServer(numbered_items(4), api_key=API_KEY) as server,
        AlloyClient(server.url, API_KEY, page_size=2) as client,
    ):
        assert len(list(client.iter_items(ALL_JOBS))) == 4
    assert query_pages(server) == [1, 2, 3]


def test_it_windows_past_page_100() -> None:
    with (
        FakeAlloyServer(numbered_items(250), api_key=API_KEY) as server,
        AlloyClient(server.url, API_KEY, page_size=2) as client,
    ):
        pages: list[int] = []
        ids = [item.item_id for item in client.iter_items(ALL_JOBS, on_page=lambda page, _: pages.append(page))]

    assert ids == [f"{n:024x}" for n in range(1, 251)]
    # 100 pages of 2, then a second window of 25 full pages and an empty one.
    assert query_pages(server) == list(range(1, 101)) + list(range(1, 27))
    assert pages == list(range(1, 127))


def test_it_windows_past_page_100_with_the_flag_filter() -> None:
    flagged = numbered_items(205)
    unflagged = numbered_items(30, flagged=False, offset=1000)
    with (
        FakeAlloyServer(flagged + unflagged, api_key=API_KEY) as server,
        AlloyClient(server.url, API_KEY, page_size=2) as client,
    ):
        ids = [item.item_id for item in client.iter_items(FLAGGED_JOBS)]

    assert ids == [item["itemId"] for item in flagged]
    assert max(page for page in query_pages(server) if page is not None) == 100


def test_a_window_combines_the_flag_and_the_last_id_under_one_and_node() -> None:
    root = build_query_aqs(FLAGGED_JOBS, after_item_id="65f0c1a0e4d0a1b2c3d4e509")["aqs"]

    assert root["type"] == "Query"
    assert root["properties"]["dodiCode"] == SAMPLE_DESIGN_CODE
    assert root["properties"]["collectionCode"] == ["Live"]
    assert root["properties"]["sortInfo"] == {"itemProperty": "ItemId", "sortOrder": "Ascending"}
    [and_node] = root["children"]
    assert and_node["type"] == "And"
    equals, greater = and_node["children"]
    assert equals["children"][1] == {"type": "Boolean", "properties": {"value": [True]}}
    assert greater["type"] == "GreaterThan"
    assert greater["children"][1] == {"type": "String", "properties": {"value": ["65f0c1a0e4d0a1b2c3d4e509"]}}


def test_a_query_without_a_flag_has_no_children() -> None:
    assert build_query_aqs(ALL_JOBS)["aqs"]["children"] == []


def test_it_reads_only_flagged_items(client: AlloyClient) -> None:
    ids = [item.item_id for item in client.iter_items(FLAGGED_JOBS)]

    assert len(ids) == 12
    assert UNFLAGGED_SAMPLE_ID not in ids
    assert ids == sorted(ids)


def test_it_yields_an_item_shifted_onto_the_next_page_once(server: FakeAlloyServer, client: AlloyClient) -> None:
    first_ids = [item["itemId"] for item in server.items[:5]]

    def insert_before_everything(page: int, _: int) -> None:
        # Someone adds an item with the lowest id while we read: page 1's last item moves to page 2.
        if page == 1:
            server.put_item(make_item({SAMPLE_FLAG_ATTRIBUTE: True}, item_id="0" * 24))

    ids = [item.item_id for item in client.iter_items(ALL_JOBS, on_page=insert_before_everything)]

    assert ids[:5] == first_ids
    assert len(ids) == len(set(ids))


def test_it_counts_items_with_the_statistics_endpoint(client: AlloyClient) -> None:
    assert client.count_items(FLAGGED_JOBS) == 12
    assert client.count_items(ALL_JOBS) == 13


# --- items --------------------------------------------------------------------------------------


def test_it_parses_items_into_attribute_mappings(client: AlloyClient) -> None:
    item = client.get_item("65f0c1a0e4d0a1b2c3d4e501")

    assert isinstance(item, AlloyItem)
    assert item.design_code == SAMPLE_DESIGN_CODE
    assert item.collection == "Live"
    assert item.signature == "64149c300a618a0370228fc4"
    assert item.attribute(TITLE_ATTRIBUTE) == "Nightly gully report"
    assert item.attribute("attributes_notThere") is None


def test_get_item_returns_none_for_a_missing_item(client: AlloyClient) -> None:
    assert client.get_item("ffffffffffffffffffffffff") is None


def test_it_tolerates_unknown_and_missing_extra_fields(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.put_item(
        {
            "itemId": "000000000000000000000abc",
            "designCode": SAMPLE_DESIGN_CODE,
            "attributes": [{"attributeCode": TITLE_ATTRIBUTE}, {"attributeCode": "attributes_x", "value": [1, 2]}],
            "signature": "0123456789abcdef01234567",
            "start": "2021-01-01T00:00:00.000Z",
            "brandNewField": {"nested": True},
        }
    )

    item = client.get_item("000000000000000000000abc")

    assert item is not None
    assert item.collection == ""
    assert item.attribute(TITLE_ATTRIBUTE) is None
    assert item.attribute("attributes_x") == [1, 2]


@pytest.mark.parametrize(
    "attributes",
    ["not a list", [{"value": 1}], [{"attributeCode": 7, "value": 1}], ["attributes_itemsTitle"]],
)
def test_a_wrong_shape_item_is_a_response_error_naming_the_item(
    server: FakeAlloyServer, client: AlloyClient, attributes: Any
) -> None:
    bad_id = "000000000000000000000bad"
    server.put_item({"itemId": bad_id, "designCode": SAMPLE_DESIGN_CODE, "attributes": attributes})

    with pytest.raises(AlloyResponseError) as caught:
        list(client.iter_items(ALL_JOBS))

    assert bad_id in caught.value.message
    assert "page 1" in caught.value.message
    assert "item 0" in caught.value.message
    assert caught.value.permanent


def test_an_item_without_an_id_is_a_response_error_naming_its_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        good = make_item({}, item_id="a" * 24)
        return httpx.Response(200, json={"page": 1, "pageSize": 100, "results": [good, {"attributes": []}]})

    with mock_client(handler, []) as client, pytest.raises(AlloyResponseError, match=r"page 1, item 1: itemId"):
        list(client.iter_items(ALL_JOBS))


def test_a_page_without_a_results_list_is_a_response_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"page": 1, "items": []})

    with mock_client(handler, []) as client, pytest.raises(AlloyResponseError, match="no results list"):
        list(client.iter_items(ALL_JOBS))


def test_update_item_with_a_stale_signature_rereads_and_retries_once(
    server: FakeAlloyServer, client: AlloyClient
) -> None:
    item = client.get_item("65f0c1a0e4d0a1b2c3d4e501")
    assert item is not None
    server.edit_item(item.item_id, {"attributes_itemsSubtitle": "edited in Alloy meanwhile"})
    server.clear_requests()

    updated = client.update_item(
        item.item_id, collection="Live", signature=item.signature, attributes={TITLE_ATTRIBUTE: "Renamed"}
    )

    assert updated.attribute(TITLE_ATTRIBUTE) == "Renamed"
    assert updated.attribute("attributes_itemsSubtitle") == "edited in Alloy meanwhile"
    assert updated.signature != item.signature
    assert [(method, path) for method, path, _ in server.requests] == [
        ("PUT", f"/api/item/{item.item_id}"),
        ("GET", f"/api/item/{item.item_id}"),
        ("PUT", f"/api/item/{item.item_id}"),
    ]


@pytest.mark.parametrize("status", [409, 400])
def test_update_item_gives_up_after_a_second_signature_mismatch(status: int) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "GET":
            return httpx.Response(200, json={"item": make_item({}, item_id="b" * 24)})
        return httpx.Response(status, json=error_body(status, "ItemSignatureMismatch", "Signature mismatch"))

    with mock_client(handler, []) as client, pytest.raises(AlloyRequestError) as caught:
        client.update_item("b" * 24, collection="Live", signature="c" * 24, attributes={TITLE_ATTRIBUTE: "x"})

    assert caught.value.category == "ItemSignatureMismatch"
    assert caught.value.status_code == status
    assert calls == ["PUT", "GET", "PUT"]


def test_update_of_a_core_item_is_an_auth_error(server: FakeAlloyServer, client: AlloyClient) -> None:
    core = server.put_item(make_item({TITLE_ATTRIBUTE: "core"}, context="Core"))

    with pytest.raises(AlloyAuthError) as caught:
        client.update_item(core["itemId"], collection="Live", signature=core["signature"], attributes={})

    assert caught.value.status_code == 403
    assert caught.value.permanent


def test_session_me_returns_the_session(client: AlloyClient) -> None:
    assert "customerCode" in client.session_me()["userSession"]


# --- rate limits and retries --------------------------------------------------------------------


def test_it_waits_for_retry_after_on_429(server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]) -> None:
    server.faults.rate_limit_next(1, header="retry-after", seconds=7)

    assert client.count_items(ALL_JOBS) == 13
    assert sleeps == [7.0]
    assert client.requests_made == 2


def test_it_waits_until_x_rate_limit_reset_on_429(
    server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]
) -> None:
    server.faults.rate_limit_next(1, header="reset", seconds=3)

    assert client.count_items(ALL_JOBS) == 13
    [wait] = sleeps
    assert 2.0 < wait <= 3.0


def test_it_backs_off_on_429_without_hints(server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]) -> None:
    server.faults.rate_limit_next(2, header="none")

    assert client.count_items(ALL_JOBS) == 13
    first, second = sleeps
    assert 1.0 <= first <= 2.0
    assert 2.0 <= second <= 3.0


def test_it_reads_retry_after_as_an_http_date() -> None:
    responses = iter(
        [
            httpx.Response(
                429,
                headers={
                    "Retry-After": email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
                },
                json=error_body(429, "RateLimited", "slow down"),
            ),
            httpx.Response(200, json={"userSession": {}}),
        ]
    )
    sleeps: list[float] = []

    with mock_client(lambda request: next(responses), sleeps) as client:
        client.session_me()

    [wait] = sleeps
    assert 28.0 <= wait <= 31.0


def test_it_caps_a_long_retry_after() -> None:
    responses = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(200, json={"userSession": {}}),
        ]
    )
    sleeps: list[float] = []

    with mock_client(lambda request: next(responses), sleeps) as client:
        client.session_me()

    assert sleeps == [MAX_WAIT_SECONDS]


def test_it_reads_alloy_timestamps_with_seven_fractional_digits() -> None:
    assert parse_alloy_timestamp("2021-03-16T11:08:08.0232125Z") == datetime(2021, 3, 16, 11, 8, 8, 23212, UTC)
    assert parse_alloy_timestamp("2021-03-16T11:08:08Z") == datetime(2021, 3, 16, 11, 8, 8, tzinfo=UTC)
    assert parse_alloy_timestamp("2021-03-16T12:08:08.5+01:00") == datetime(2021, 3, 16, 11, 8, 8, 500000, UTC)
    assert parse_alloy_timestamp("2021-13-16T11:08:08Z") is None
    assert parse_alloy_timestamp("soon") is None


def test_it_retries_5xx_then_succeeds(server: FakeAlloyServer, client: AlloyClient, sleeps: list[float]) -> None:
    server.faults.fail_next(2, status=503)

    assert client.count_items(ALL_JOBS) == 13
    assert client.requests_made == 3
    assert len(sleeps) == 2
    assert sleeps[0] < sleeps[1]


def test_it_gives_up_on_5xx_after_the_retry_budget(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.fail_next(1000, status=502)
    started = time.monotonic()

    with (
        AlloyClient(server.url, API_KEY, max_retry_seconds=10, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnavailableError) as caught,
    ):
        client.session_me()

    error = caught.value
    assert time.monotonic() - started < 5
    assert sum(sleeps) <= 10
    assert error.attempts == client.requests_made == len(sleeps) + 1
    assert 2 <= error.attempts <= 6
    assert f"{error.attempts} attempts over" in error.message
    assert "HTTP 502" in error.message
    assert error.status_code == 502
    assert not error.permanent


def test_it_retries_a_timeout_then_succeeds(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.hang_next(1, seconds=3)
    started = time.monotonic()

    with AlloyClient(server.url, API_KEY, timeout=0.3, sleep=sleeps.append) as client:
        assert client.count_items(ALL_JOBS) == 13

    assert client.requests_made == 2
    assert len(sleeps) == 1
    assert time.monotonic() - started < 2.5


def test_it_gives_up_on_timeouts_after_the_retry_budget(server: FakeAlloyServer, sleeps: list[float]) -> None:
    server.faults.hang_next(100, seconds=5)

    with (
        AlloyClient(server.url, API_KEY, timeout=0.2, max_retry_seconds=3, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnavailableError, match=r"timed out after 0\.2 s"),
    ):
        client.session_me()


def test_it_retries_a_page_that_breaks_off(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.fail_page(2, "broken")

    ids = [item.item_id for item in client.iter_items(ALL_JOBS)]

    assert len(ids) == 13
    assert query_pages(server) == [1, 2, 2, 3, 4, 5, 6, 7]


def test_it_retries_a_page_answered_with_500(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.fail_page(3, 500, times=2)

    assert len(list(client.iter_items(ALL_JOBS))) == 13
    assert query_pages(server).count(3) == 3


def test_a_malformed_json_page_is_a_response_error_without_retries(
    server: FakeAlloyServer, client: AlloyClient
) -> None:
    server.faults.fail_page(2, "malformed")

    with pytest.raises(AlloyResponseError, match="not JSON") as caught:
        list(client.iter_items(ALL_JOBS))

    assert caught.value.permanent
    assert query_pages(server) == [1, 2]


def test_a_refused_connection_is_retried_then_unavailable(sleeps: list[float]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with (
        AlloyClient(f"http://127.0.0.1:{port}", API_KEY, max_retry_seconds=5, sleep=sleeps.append) as client,
        pytest.raises(AlloyUnavailableError, match="ConnectError"),
    ):
        client.session_me()
    assert client.requests_made >= 2


def test_requests_made_counts_every_attempt(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.fail_next(2, status=500)

    client.session_me()
    list(client.iter_items(ALL_JOBS))

    assert client.requests_made == 3 + 7
    assert client.requests_made == len(server.requests)


# --- errors -------------------------------------------------------------------------------------


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


def test_a_count_of_the_wrong_shape_is_a_response_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": []})

    with mock_client(handler, []) as client, pytest.raises(AlloyResponseError):
        client.count_items(ALL_JOBS)


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
