"""AlloyClient's calls against the fake Alloy over a real socket: paging, counts, reads and edits."""

from __future__ import annotations

import httpx
import pytest

from alloysync.client import AlloyAuthError, AlloyRequestError, AlloyResponseError
from alloysync.client.client import AlloyClient
from alloysync.fake_alloy import SAMPLE_FLAG_ATTRIBUTE, TITLE_ATTRIBUTE, FakeAlloyServer, make_item
from tests.alloysync.client.helpers import (
    ALL_JOBS,
    API_KEY,
    FLAGGED_JOBS,
    UNFLAGGED_SAMPLE_ID,
    error_body,
    mock_client,
    numbered_items,
    query_pages,
)

pytestmark = pytest.mark.timeout(60)


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
        # 126 queries in a minute: the pacer's waits (the fake counts 100 a minute) are not slept.
        AlloyClient(server.url, API_KEY, page_size=2, sleep=lambda _: None) as client,
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
        AlloyClient(server.url, API_KEY, page_size=2, sleep=lambda _: None) as client,
    ):
        ids = [item.item_id for item in client.iter_items(FLAGGED_JOBS)]

    assert ids == [item["itemId"] for item in flagged]
    assert max(page for page in query_pages(server) if page is not None) == 100


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


def test_get_item_returns_none_for_a_missing_item(client: AlloyClient) -> None:
    assert client.get_item("ffffffffffffffffffffffff") is None


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


def test_requests_made_counts_every_attempt(server: FakeAlloyServer, client: AlloyClient) -> None:
    server.faults.fail_next(2, status=500)

    client.session_me()
    list(client.iter_items(ALL_JOBS))

    assert client.requests_made == 3 + 7
    assert client.requests_made == len(server.requests)
