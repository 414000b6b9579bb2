"""A simulated Alloy workflow: webhook calls on create, edit and delete, caught by a tiny receiver."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from alloysync.fake_alloy import (
    SAMPLE_CRON_ATTRIBUTE,
    SAMPLE_DESIGN_CODE,
    TITLE_ATTRIBUTE,
    FakeAlloyServer,
    Workflow,
    load_items,
    make_item,
)
from alloysync.fake_alloy.samples import SAMPLE_ITEMS_PATH
from tests.alloysync.fake_alloy.helpers import API_KEY, Receiver

pytestmark = pytest.mark.timeout(60)

SECRET = "webhook-secret-for-tests"
ITEM = "65f0c1a0e4d0a1b2c3d4e501"


@pytest.fixture
def alloy() -> Iterator[FakeAlloyServer]:
    with FakeAlloyServer(load_items(SAMPLE_ITEMS_PATH), api_key=API_KEY) as server:
        yield server


def dead_url() -> str:
    """A loopback URL nothing listens on (a port just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def events(server: FakeAlloyServer) -> list[tuple[str, str]]:
    assert server.wait_for_workflow(10)
    return [(call.event, call.item_id) for call in server.workflow_calls]


@pytest.mark.parametrize(
    ("shape", "expected_body", "expected_query"),
    [
        ("itemId", {"itemId": "a" * 24}, {}),
        ("itemIds", {"itemIds": ["a" * 24]}, {}),
        ("item", {"item": {"itemId": "a" * 24, "designCode": SAMPLE_DESIGN_CODE}}, {}),
        ("query", None, {"itemId": ["a" * 24]}),
    ],
)
def test_it_posts_the_item_in_the_chosen_shape_with_the_secret(
    alloy: FakeAlloyServer, receiver: Receiver, shape: str, expected_body: Any, expected_query: dict[str, Any]
) -> None:
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET, body=shape)

    alloy.put_item(make_item({TITLE_ATTRIBUTE: "new"}, item_id="a" * 24))

    assert events(alloy) == [("create", "a" * 24)]
    assert alloy.workflow_calls[0].outcome == 200
    (call,) = receiver.received
    assert (call.method, call.path, call.query) == ("POST", "/hooks/alloy", expected_query)
    assert call.headers["authorization"] == f"Bearer {SECRET}"
    assert call.headers["content-type"] == "application/json"
    assert (json.loads(call.body) if call.body else None) == expected_body


def test_it_fires_on_create_edit_and_delete(alloy: FakeAlloyServer, receiver: Receiver) -> None:
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET)

    alloy.put_item(make_item({TITLE_ATTRIBUTE: "new"}, item_id="a" * 24))
    alloy.edit_item("a" * 24, {TITLE_ATTRIBUTE: "renamed"})
    alloy.edit_item("a" * 24, {}, collection="Archive")  # a move is an edit
    alloy.remove_item("a" * 24)

    assert events(alloy) == [("create", "a" * 24), ("edit", "a" * 24), ("edit", "a" * 24), ("delete", "a" * 24)]
    assert [json.loads(call.body) for call in receiver.received] == [{"itemId": "a" * 24}] * 4


def test_it_listens_only_to_the_events_chosen(alloy: FakeAlloyServer, receiver: Receiver) -> None:
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET, on=("delete",))

    alloy.edit_item(ITEM, {TITLE_ATTRIBUTE: "renamed"})
    alloy.remove_item(ITEM)

    assert events(alloy) == [("delete", ITEM)]


def test_it_fires_only_for_items_of_its_design(alloy: FakeAlloyServer, receiver: Receiver) -> None:
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET)

    alloy.put_item(make_item({TITLE_ATTRIBUTE: "other"}, design_code="designs_other_65f0c0ffee0000000000ffff"))

    assert events(alloy) == []
    assert receiver.received == []


def test_an_attribute_filter_fires_only_on_edits_that_change_those_attributes(
    alloy: FakeAlloyServer, receiver: Receiver
) -> None:
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET, attributes={SAMPLE_CRON_ATTRIBUTE})
    cron = next(
        a["value"] for a in (alloy.get(ITEM) or {})["attributes"] if a["attributeCode"] == SAMPLE_CRON_ATTRIBUTE
    )

    alloy.edit_item(ITEM, {TITLE_ATTRIBUTE: "renamed"})  # not listened to
    alloy.edit_item(ITEM, {SAMPLE_CRON_ATTRIBUTE: cron})  # set to what it was: no change
    alloy.edit_item(ITEM, {SAMPLE_CRON_ATTRIBUTE: "*/3 * * * *"})
    alloy.edit_item(ITEM, {SAMPLE_CRON_ATTRIBUTE: None})  # cleared: a change
    alloy.put_item(make_item({TITLE_ATTRIBUTE: "new"}, item_id="a" * 24))  # creates always fire
    alloy.remove_item("a" * 24)  # and deletes

    assert events(alloy) == [("edit", ITEM), ("edit", ITEM), ("create", "a" * 24), ("delete", "a" * 24)]


def test_edits_made_through_the_api_fire_it_too(alloy: FakeAlloyServer, receiver: Receiver) -> None:
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET, body="itemIds")
    before = alloy.get(ITEM) or {}
    edited_before = alloy.edit_time(ITEM)

    with httpx.Client(base_url=alloy.url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        attributes = [{"attributeCode": TITLE_ATTRIBUTE, "value": "written by alloysync"}]
        response = http.put(f"/api/item/{ITEM}", json={"signature": before["signature"], "attributes": attributes})
        deleted = http.delete(f"/api/item/{ITEM}")

    assert (response.status_code, deleted.status_code) == (200, 200)
    assert events(alloy) == [("edit", ITEM), ("delete", ITEM)]
    assert json.loads(receiver.received[0].body) == {"itemIds": [ITEM]}
    assert edited_before is not None
    assert alloy.edits[0].at > edited_before


def test_a_slow_webhook_never_holds_up_the_edit(alloy: FakeAlloyServer, receiver: Receiver) -> None:
    receiver.delay = 1.5
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET)

    started = time.monotonic()
    alloy.edit_item(ITEM, {TITLE_ATTRIBUTE: "one"})
    alloy.edit_item(ITEM, {TITLE_ATTRIBUTE: "two"})

    assert time.monotonic() - started < 0.5
    assert events(alloy) == [("edit", ITEM), ("edit", ITEM)]  # made one after the other


def test_a_dead_webhook_does_not_break_the_fake(alloy: FakeAlloyServer) -> None:
    alloy.workflow = Workflow(url=dead_url(), secret=SECRET, timeout=1)

    with httpx.Client(base_url=alloy.url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        signature = (alloy.get(ITEM) or {})["signature"]
        response = http.put(f"/api/item/{ITEM}", json={"signature": signature, "attributes": []})
        assert events(alloy) == [("edit", ITEM)]
        assert http.get(f"/api/item/{ITEM}").status_code == 200

    assert response.status_code == 200
    (call,) = alloy.workflow_calls
    assert call.failed
    assert isinstance(call.outcome, str)
    assert SECRET not in call.outcome


def test_an_error_answer_is_recorded_and_ignored(alloy: FakeAlloyServer, receiver: Receiver) -> None:
    receiver.status = 500
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET)

    alloy.edit_item(ITEM, {TITLE_ATTRIBUTE: "one"})

    assert events(alloy) == [("edit", ITEM)]
    assert alloy.workflow_calls[0].outcome == 500
    assert alloy.workflow_calls[0].failed


def test_switching_the_workflow_off_stops_the_calls(alloy: FakeAlloyServer, receiver: Receiver) -> None:
    alloy.workflow = Workflow(url=receiver.url, secret=SECRET)
    alloy.edit_item(ITEM, {TITLE_ATTRIBUTE: "one"})
    alloy.workflow = None
    alloy.edit_item(ITEM, {TITLE_ATTRIBUTE: "two"})

    assert events(alloy) == [("edit", ITEM)]


@pytest.mark.parametrize(
    "options",
    [
        {"url": "ftp://127.0.0.1/hook"},
        {"url": "not a url"},
        {"body": "xml"},
        {"on": ("create", "archive")},
        {"on": ()},
        {"timeout": 0},
    ],
)
def test_a_workflow_refuses_options_alloy_has_not(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Workflow(**{"url": "http://127.0.0.1/hook", "secret": SECRET, **options})


def test_a_workflow_never_shows_its_secret() -> None:
    assert SECRET not in repr(Workflow(url="http://127.0.0.1/hook", secret=SECRET))


def test_the_items_a_server_starts_with_call_no_webhook(receiver: Receiver) -> None:
    workflow = Workflow(url=receiver.url, secret=SECRET)
    with FakeAlloyServer(load_items(SAMPLE_ITEMS_PATH), api_key=API_KEY, workflow=workflow) as server:
        server.remove_item(ITEM)

        assert events(server) == [("delete", ITEM)]
