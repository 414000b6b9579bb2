"""The fake Alloy, spoken to with plain httpx over a real socket: it must behave as alloy-api.md says."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alloysync import fake_alloy
from alloysync.fake_alloy import (
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_DESIGN_CODE,
    SAMPLE_FLAG_ATTRIBUTE,
    SAMPLE_ITEMS_PATH,
    SAMPLE_STEPS_ATTRIBUTE,
    SAMPLE_TIMEZONE_ATTRIBUTE,
    TITLE_ATTRIBUTE,
    FakeAlloyServer,
    load_items,
    make_item,
)

pytestmark = pytest.mark.timeout(60)

API_KEY = "e0e3a4ef-5ec8-4e05-ac25-a34adadf4a80"
HEX24 = re.compile(r"^[0-9a-f]{24}$")
ALLOY_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")
ERROR_FIELDS = {"category", "errorCode", "errorData", "httpStatusCode", "message"}


def attribute(code: str) -> dict[str, Any]:
    return {"type": "Attribute", "properties": {"attributeCode": code}}


def item_property(name: str) -> dict[str, Any]:
    return {"type": "ItemProperty", "properties": {"itemPropertyName": name}}


def value(kind: str, *values: Any) -> dict[str, Any]:
    return {"type": kind, "properties": {"value": list(values)}}


def query_body(*children: dict[str, Any], design: str = SAMPLE_DESIGN_CODE, collection: Any = None) -> dict[str, Any]:
    properties = {
        "dodiCode": design,
        "collectionCode": ["Live"] if collection is None else collection,
        "attributes": ["all"],
        "sortInfo": {"itemProperty": "ItemId", "sortOrder": "Ascending"},
    }
    return {"aqs": {"type": "Query", "properties": properties, "children": list(children)}}


@pytest.fixture
def server() -> Iterator[FakeAlloyServer]:
    with FakeAlloyServer(load_items(SAMPLE_ITEMS_PATH), api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def http(server: FakeAlloyServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
        yield client


def query(http: httpx.Client, body: Any, page: int = 1, page_size: int = 100) -> httpx.Response:
    return http.post("/api/aqs/query", params={"page": page, "pageSize": page_size}, json=body)


def result_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["itemId"] for item in response.json()["results"]]


def assert_alloy_error(response: httpx.Response, status: int, category: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == ERROR_FIELDS
    assert body["category"] == category
    assert body["httpStatusCode"] == status
    assert body["errorData"] is None


# --- listening ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org", ""])  # noqa: S104
def test_it_refuses_a_non_loopback_host(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeAlloyServer(api_key=API_KEY, host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_it_accepts_loopback_hosts(host: str) -> None:
    FakeAlloyServer(api_key=API_KEY, host=host)  # not started: ::1 may not exist in a container


def test_its_url_names_the_port_it_got() -> None:
    with FakeAlloyServer(api_key=API_KEY) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert not server.url.endswith(":0")
    with pytest.raises(RuntimeError):
        _ = server.url


def test_stop_does_not_wait_for_a_held_request(server: FakeAlloyServer) -> None:
    server.faults.hang_next(1, seconds=30)

    outcomes: list[str] = []

    def held_request() -> None:
        try:
            httpx.get(f"{server.url}/api/session/me", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        except httpx.HTTPError as exc:
            outcomes.append(type(exc).__name__)

    thread = threading.Thread(target=held_request)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=10)

    assert time.monotonic() - started < 3
    assert not thread.is_alive()
    assert outcomes == ["RemoteProtocolError"]  # hung up on, not answered


# --- authentication and errors ------------------------------------------------------------------


def test_it_requires_the_bearer_key(server: FakeAlloyServer) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        assert_alloy_error(anonymous.get("/api/session/me"), 401, "UserUnauthorized")
        wrong = anonymous.get("/api/session/me", headers={"Authorization": "Bearer not-the-key"})
        assert_alloy_error(wrong, 401, "UserUnauthorized")
        # The old ways were switched off in 2025.
        assert_alloy_error(anonymous.get("/api/session/me", params={"token": API_KEY}), 401, "UserUnauthorized")
        assert_alloy_error(anonymous.get("/api/session/me", headers={"Token": API_KEY}), 401, "UserUnauthorized")


def test_session_me_answers_with_a_user_session(http: httpx.Client) -> None:
    response = http.get("/api/session/me")

    assert response.status_code == 200
    assert response.json()["userSession"]["customerCode"]


def test_it_sends_rate_limit_headers_on_every_response(server: FakeAlloyServer, http: httpx.Client) -> None:
    responses = [http.get("/api/session/me"), http.get("/api/nowhere"), httpx.get(f"{server.url}/api/session/me")]

    for response in responses:
        assert int(response.headers["X-Rate-Limit-Remaining"]) >= 0
        assert ALLOY_TIMESTAMP.match(response.headers["X-Rate-Limit-Reset"])


def test_an_unknown_endpoint_is_a_404_in_alloys_error_shape(http: httpx.Client) -> None:
    assert_alloy_error(http.get("/api/nowhere"), 404, "ResourceNotFound")


# --- AQS queries --------------------------------------------------------------------------------


def test_it_pages_by_item_id_from_page_1(server: FakeAlloyServer, http: httpx.Client) -> None:
    all_ids = sorted(item["itemId"] for item in server.items)

    first, last = query(http, query_body(), 1, 5), query(http, query_body(), 3, 5)

    assert first.json()["page"] == 1
    assert first.json()["pageSize"] == 5
    assert result_ids(first) == all_ids[:5]
    assert result_ids(last) == all_ids[10:]
    assert result_ids(query(http, query_body(), 4, 5)) == []


def test_it_refuses_page_101(http: httpx.Client) -> None:
    assert query(http, query_body(), 100, 1).status_code == 200

    assert_alloy_error(query(http, query_body(), 101, 1), 400, "AqsInvalidQuery")


def test_it_filters_on_a_boolean_attribute(http: httpx.Client) -> None:
    flagged = query(
        http, query_body({"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", True)]})
    )
    unflagged = query(
        http, query_body({"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", False)]})
    )

    assert len(result_ids(flagged)) == 12
    assert result_ids(unflagged) == ["65f0c1a0e4d0a1b2c3d4e50d"]


def test_it_evaluates_and_or_equals_and_greater_than(http: httpx.Client) -> None:
    after = {"type": "GreaterThan", "children": [item_property("ITEMID"), value("String", "65f0c1a0e4d0a1b2c3d4e509")]}
    titled = {
        "type": "Or",
        "children": [
            {"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("String", "Hourly asset sync")]},
            {"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("String", "Broken: unknown function")]},
        ],
    }

    assert result_ids(query(http, query_body(after))) == [f"65f0c1a0e4d0a1b2c3d4e50{c}" for c in "abcd"]
    assert result_ids(query(http, query_body(titled))) == ["65f0c1a0e4d0a1b2c3d4e504", "65f0c1a0e4d0a1b2c3d4e50b"]
    assert result_ids(query(http, query_body({"type": "And", "children": [after, titled]}))) == [
        "65f0c1a0e4d0a1b2c3d4e50b"
    ]


def test_it_takes_collection_code_as_a_string_or_a_list(server: FakeAlloyServer, http: httpx.Client) -> None:
    archived = server.put_item(make_item({TITLE_ATTRIBUTE: "old"}, collection="Archive"))

    assert archived["itemId"] not in result_ids(query(http, query_body(collection="Live")))
    assert result_ids(query(http, query_body(collection="Archive"))) == [archived["itemId"]]
    assert archived["itemId"] in result_ids(query(http, query_body(collection=["Live", "Archive"])))


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Query"},
        {"aqs": {"type": "Query", "properties": {}}},
        query_body({"type": "Near", "children": []}),
        query_body({"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE)]}),
        query_body({"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("Boolean", "yes")]}),
        query_body(collection=["Nowhere"]),
        {
            "aqs": {
                **query_body()["aqs"],
                "children": [
                    {"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", True)]},
                    {"type": "Equals", "children": [attribute(TITLE_ATTRIBUTE), value("String", "x")]},
                ],
            }
        },
    ],
    ids=["no-aqs", "no-design", "unknown-node", "one-operand", "wrong-value-type", "bad-collection", "two-roots"],
)
def test_it_rejects_malformed_queries(http: httpx.Client, body: dict[str, Any]) -> None:
    assert_alloy_error(query(http, body), 400, "AqsInvalidQuery")


def test_it_rejects_a_body_that_is_not_json(http: httpx.Client) -> None:
    response = http.post("/api/aqs/query", params={"page": 1, "pageSize": 10}, content=b"{not json")

    assert_alloy_error(response, 400, "AqsInvalidQuery")


def test_it_refuses_an_unknown_design(http: httpx.Client) -> None:
    response = query(http, query_body(design="designs_typo_65f0c0ffee0000000000ffff"))

    assert_alloy_error(response, 400, "AqsInvalidQuery")
    assert "does not exist" in response.json()["message"]


def test_it_counts_with_a_statistics_aggregation(http: httpx.Client) -> None:
    flag = {"type": "Equals", "children": [attribute(SAMPLE_FLAG_ATTRIBUTE), value("Boolean", True)]}
    body = query_body(flag)
    body["aqs"]["type"] = "StatisticsAggregation"
    body["aqs"]["properties"]["aggregationType"] = "Count"

    response = http.post("/api/aqs/statistics", json=body)

    assert response.status_code == 200
    assert response.json()["results"][0]["value"]["value"] == 12


# --- items --------------------------------------------------------------------------------------


def test_it_returns_an_item_wrapped_in_item(http: httpx.Client) -> None:
    response = http.get("/api/item/65f0c1a0e4d0a1b2c3d4e501")

    assert response.status_code == 200
    assert response.json()["item"]["signature"] == "64149c300a618a0370228fc4"
    assert_alloy_error(http.get("/api/item/ffffffffffffffffffffffff"), 404, "ItemNotFound")


def test_a_put_with_the_current_signature_edits_only_the_listed_attributes(http: httpx.Client) -> None:
    before = http.get("/api/item/65f0c1a0e4d0a1b2c3d4e501").json()["item"]

    response = http.put(
        "/api/item/65f0c1a0e4d0a1b2c3d4e501",
        json={
            "collection": "Live",
            "signature": before["signature"],
            "attributes": [{"attributeCode": TITLE_ATTRIBUTE, "value": "Renamed"}],
        },
    )

    after = response.json()["item"]
    assert response.status_code == 200
    assert HEX24.match(after["signature"])
    assert after["signature"] != before["signature"]
    assert {a["attributeCode"]: a["value"] for a in after["attributes"]} == {
        **{a["attributeCode"]: a["value"] for a in before["attributes"]},
        TITLE_ATTRIBUTE: "Renamed",
    }


def test_a_put_with_a_stale_signature_is_a_409(server: FakeAlloyServer, http: httpx.Client) -> None:
    stale = server.get("65f0c1a0e4d0a1b2c3d4e501")
    assert stale is not None
    server.edit_item(stale["itemId"], {"attributes_itemsSubtitle": "someone else"})

    response = http.put(
        f"/api/item/{stale['itemId']}", json={"collection": "Live", "signature": stale["signature"], "attributes": []}
    )

    assert_alloy_error(response, 409, "ItemSignatureMismatch")


@pytest.mark.parametrize("context", ["Core", "Module"])
def test_core_and_module_items_cannot_be_edited(server: FakeAlloyServer, http: httpx.Client, context: str) -> None:
    item = server.put_item(make_item({TITLE_ATTRIBUTE: "system"}, context=context))

    response = http.put(f"/api/item/{item['itemId']}", json={"signature": item["signature"], "attributes": []})

    assert response.status_code == 403
    assert set(response.json()) == ERROR_FIELDS


def test_edit_item_changes_the_signature_and_remove_item_deletes(server: FakeAlloyServer, http: httpx.Client) -> None:
    before = server.get("65f0c1a0e4d0a1b2c3d4e502")
    assert before is not None

    edited = server.edit_item("65f0c1a0e4d0a1b2c3d4e502", {SAMPLE_CRON_ATTRIBUTE: "*/7 * * * *", TITLE_ATTRIBUTE: None})

    assert HEX24.match(edited["signature"])
    assert edited["signature"] != before["signature"]
    codes = {a["attributeCode"]: a["value"] for a in edited["attributes"]}
    assert codes[SAMPLE_CRON_ATTRIBUTE] == "*/7 * * * *"
    assert TITLE_ATTRIBUTE not in codes
    server.remove_item("65f0c1a0e4d0a1b2c3d4e502")
    assert http.get("/api/item/65f0c1a0e4d0a1b2c3d4e502").status_code == 404
    assert len(server.items) == 12


def test_items_are_copies(server: FakeAlloyServer) -> None:
    server.items[0]["itemId"] = "changed"

    assert server.items[0]["itemId"] == "65f0c1a0e4d0a1b2c3d4e501"


# --- faults -------------------------------------------------------------------------------------


def test_fail_next_fails_that_many_requests_then_recovers(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_next(2, status=502)

    statuses = [http.get("/api/session/me").status_code for _ in range(3)]

    assert statuses == [502, 502, 200]


def test_error_rate_answers_that_fraction_with_5xx(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.error_rate = 1.0
    assert all(http.get("/api/session/me").status_code >= 500 for _ in range(5))
    server.faults.error_rate = 0.0
    assert http.get("/api/session/me").status_code == 200


@pytest.mark.parametrize(
    ("header", "retry_after", "has_reset"),
    [("retry-after", "4", True), ("reset", None, True), ("none", None, False)],
)
def test_rate_limit_next_announces_the_wait_as_asked(
    server: FakeAlloyServer, http: httpx.Client, header: str, retry_after: str | None, has_reset: bool
) -> None:
    server.faults.rate_limit_next(1, header=header, seconds=4)

    response = http.get("/api/session/me")

    assert_alloy_error(response, 429, "RateLimited")
    assert response.headers.get("Retry-After") == retry_after
    assert ("X-Rate-Limit-Reset" in response.headers) is has_reset
    assert http.get("/api/session/me").status_code == 200


def test_a_malformed_page_is_not_json(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_page(2, "malformed")

    assert query(http, query_body(), 1, 2).status_code == 200
    broken = query(http, query_body(), 2, 2)

    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert query(http, query_body(), 2, 2).status_code == 200


def test_a_broken_page_breaks_off_mid_body(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_page(1, "broken")

    with pytest.raises(httpx.RemoteProtocolError):
        query(http, query_body(), 1, 5)
    assert len(result_ids(query(http, query_body(), 1, 5))) == 5


def test_fail_page_with_times_none_fails_every_time(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_page(1, 500, times=None)

    assert [query(http, query_body()).status_code for _ in range(3)] == [500, 500, 500]


def test_hang_next_holds_a_request_past_the_client_timeout(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.hang_next(1, seconds=1)

    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/session/me", timeout=0.2)
    assert http.get("/api/session/me", timeout=0.5).status_code == 200


def test_latency_delays_every_answer(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.latency = 0.2
    started = time.monotonic()

    http.get("/api/session/me")
    http.get("/api/session/me")

    assert time.monotonic() - started >= 0.4


def test_clear_removes_every_fault(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.latency = 5
    server.faults.fail_next(5)
    server.faults.rate_limit_next(5)
    server.faults.fail_page(1, "broken", times=None)

    server.faults.clear()

    assert http.get("/api/session/me", timeout=2).status_code == 200
    assert query(http, query_body()).status_code == 200


def test_it_logs_every_request_with_its_page(server: FakeAlloyServer, http: httpx.Client) -> None:
    server.faults.fail_next(1)
    query(http, query_body(), 3, 2)
    http.get("/api/item/65f0c1a0e4d0a1b2c3d4e501")

    assert server.requests == [
        ("POST", "/api/aqs/query", 3),
        ("GET", "/api/item/65f0c1a0e4d0a1b2c3d4e501", None),
    ]


# --- sample items and the command line ----------------------------------------------------------


def test_the_sample_items_look_like_alloys() -> None:
    items = load_items(SAMPLE_ITEMS_PATH)

    assert len(items) == 13
    assert len({item["itemId"] for item in items}) == 13
    for item in items:
        assert HEX24.match(item["itemId"]) and HEX24.match(item["signature"])
        assert item["designCode"] == SAMPLE_DESIGN_CODE
        codes = {a["attributeCode"]: a["value"] for a in item["attributes"]}
        assert {TITLE_ATTRIBUTE, SAMPLE_CRON_ATTRIBUTE, SAMPLE_STEPS_ATTRIBUTE, SAMPLE_FLAG_ATTRIBUTE} <= set(codes)
    flags = [
        next(a["value"] for a in item["attributes"] if a["attributeCode"] == SAMPLE_FLAG_ATTRIBUTE) for item in items
    ]
    assert flags.count(False) == 1
    zones = {
        a["value"] for item in items for a in item["attributes"] if a["attributeCode"] == SAMPLE_TIMEZONE_ATTRIBUTE
    }
    assert "Europe/London" in zones


def test_load_items_explains_a_malformed_file(tmp_path: Path) -> None:
    not_json, no_ids = tmp_path / "a.json", tmp_path / "b.json"
    not_json.write_text("[{")
    no_ids.write_text(json.dumps({"items": [{"designCode": SAMPLE_DESIGN_CODE}]}))

    with pytest.raises(ValueError, match=r"a\.json"):
        load_items(not_json)
    with pytest.raises(ValueError, match="item 0 has no string itemId"):
        load_items(no_ids)


def test_main_serves_the_items_until_interrupted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps([make_item({TITLE_ATTRIBUTE: "only one"}, item_id="1" * 24)]))
    out = io.StringIO()
    answers: list[int] = []

    def request_then_interrupt() -> None:
        url = re.search(r"http://127\.0\.0\.1:\d+", out.getvalue())
        assert url is not None
        answers.append(
            httpx.get(f"{url.group()}/api/item/{'1' * 24}", headers={"Authorization": "Bearer k"}).status_code
        )
        raise KeyboardInterrupt

    monkeypatch.setattr(fake_alloy, "_wait_for_interrupt", request_then_interrupt)

    status = fake_alloy.main(["--port", "0", "--items", str(items_file), "--api-key", "k"], stdout=out)

    assert status == 0
    assert answers == [200]
    assert "1 items" in out.getvalue()
    assert "accepting the key given" in out.getvalue()
