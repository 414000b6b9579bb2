"""POST /alloy/webhook through Django: who may call it, what it records and queues, what it refuses."""

from __future__ import annotations

import io
import json
import logging
import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from alloysync.models import PendingItemRead
from alloysync.webhook_calls import MAX_BODY_BYTES
from alloysync.webhook_reads import WEBHOOK_SYNC_LEASE
from config import celery_app
from config.env_secrets import Secret
from scheduler.models import Lease
from tests.helpers import broker_unreachable

pytestmark = pytest.mark.django_db

SECRET = "wh-3b9f1c2d7e4a5b6c8d9e0f1a2b3c4d5e"
AUTH = f"Bearer {SECRET}"
URL = "/alloy/webhook"
A = "65f0c0ffee0000000000000a"
B = "65f0c0ffee0000000000000b"


@pytest.fixture
def webhook_on(settings):
    settings.ALLOY_WEBHOOK_SECRET = Secret(SECRET)  # as config/settings.py holds it


@pytest.fixture
def sent(monkeypatch):
    """The tasks the webhook sends, recorded instead of published: (name, options)."""
    messages: list[tuple[str, dict]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, **options: messages.append((name, options)))
    return messages


def post(client: Client, body: bytes | str = b"", *, auth: str | None = AUTH, query: str = "", **extra):
    headers = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    content_type = extra.pop("content_type", "application/json")
    return client.post(f"{URL}{query}", data=body, content_type=content_type, **headers, **extra)


def pending() -> list[str]:
    return sorted(PendingItemRead.objects.values_list("item_id", flat=True))


@pytest.mark.parametrize(
    ("body", "query", "content_type"),
    [
        ({"itemId": A}, "", "application/json"),
        ({"itemIds": [A, B]}, "", "application/json"),
        ({"item": {"itemId": A, "designCode": "designs_x"}}, "", "application/json"),
        ("", f"?itemId={A}", "application/json"),
        ("", f"?itemId={A}&itemId={B}", ""),
        (f"itemId={A}&itemId={B}", "", "application/x-www-form-urlencoded"),
        (f'"{A}"', "", "text/plain"),
        (f"  {A}\n", "", ""),
        ({"itemId": A}, "", "text/html"),
    ],
)
def test_each_shape_records_its_items_answers_202_and_queues_one_read(
    client, webhook_on, sent, django_capture_on_commit_callbacks, body, query, content_type
):
    data = json.dumps(body) if isinstance(body, dict) else body
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, data, query=query, content_type=content_type)
    expected = [A, B] if B in f"{data}{query}" else [A]
    assert response.status_code == 202
    assert response.json() == {"accepted": expected, "read": "queued"}
    assert pending() == expected
    assert [(name, options["countdown"]) for name, options in sent] == [("alloysync.read_items", 1)]


def test_a_storm_about_one_item_is_one_row_and_one_queued_read(
    client, webhook_on, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        codes = {post(client, json.dumps({"itemId": A})).status_code for _ in range(200)}
    assert codes == {202}
    assert pending() == [A]
    assert [name for name, _ in sent] == ["alloysync.read_items"]


def test_a_call_about_a_pending_item_moves_its_time_on_so_a_read_under_way_keeps_it(
    client, webhook_on, sent, django_capture_on_commit_callbacks
):
    earlier = timezone.now() - timedelta(seconds=5)
    PendingItemRead.objects.create(item_id=A, requested_at=earlier)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, json.dumps({"itemIds": [A, B]})).status_code == 202
    assert PendingItemRead.objects.get(item_id=A).requested_at > earlier
    assert pending() == [A, B]
    assert [name for name, _ in sent] == ["alloysync.read_items"]  # B is new; A alone would queue nothing


def test_a_call_naming_no_item_queues_one_incremental_sync_for_a_burst(
    client, webhook_on, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        responses = [post(client, body) for body in (b"", b"{}", b'{"itemId": ""}', b"{}")]
    assert {response.status_code for response in responses} == {202}
    assert responses[0].json() == {"accepted": [], "read": "queued"}
    assert [name for name, _ in sent] == ["alloysync.sync"]
    assert sent[0][1]["expires"] > 0
    assert sent[0][1]["kwargs"] == {"trigger": "webhook"}  # recorded as the webhook's, not beat's
    assert pending() == []
    # Once the spacing has passed, the next such call queues another.
    Lease.objects.filter(name=WEBHOOK_SYNC_LEASE).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        post(client)
    assert [name for name, _ in sent] == ["alloysync.sync", "alloysync.sync"]


@pytest.mark.parametrize(
    "auth",
    [None, "", "Bearer", "Bearer ", f"Basic {SECRET}", f"Token {SECRET}", f"Bearer {SECRET}x", f"Bearer {SECRET[:-1]}",
     f"Bearer  {SECRET} extra", f"{SECRET}", "Bearer wrong", "Bearer \u00e9\u00e8"],
)  # fmt: skip
def test_a_missing_or_wrong_secret_is_401_records_nothing_and_never_shows_the_secret(
    client, webhook_on, sent, caplog, django_capture_on_commit_callbacks, auth
):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, json.dumps({"itemId": A}), auth=auth)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert pending() == [] and sent == [] and not Lease.objects.filter(name=WEBHOOK_SYNC_LEASE).exists()
    assert SECRET not in response.content.decode()
    assert_secret_not_logged(caplog)


def test_the_scheme_is_case_insensitive_and_spaces_around_the_token_are_ignored(client, webhook_on, sent):
    assert post(client, auth=f"bearer {SECRET}").status_code == 202
    assert post(client, auth=f"BEARER   {SECRET} ").status_code == 202


def test_an_accepted_call_logs_its_ids_but_never_the_secret_or_the_body(
    client, webhook_on, sent, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, json.dumps({"itemId": A, "note": "private words"}))
    assert A in caplog.text
    assert "private words" not in caplog.text
    assert_secret_not_logged(caplog)


def test_without_the_setting_the_url_is_the_same_404_as_any_unknown_one(client, settings, sent):
    settings.ALLOY_WEBHOOK_SECRET = None
    settings.DEBUG = False
    unknown = client.post("/alloy/no-such-thing", data="{}", content_type="application/json")
    for method in (client.post, client.get):
        response = method(URL, HTTP_AUTHORIZATION=AUTH)
        assert response.status_code == 404
        assert response.content == unknown.content
    assert pending() == [] and sent == []


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch", "head"])
def test_only_post_is_allowed(client, webhook_on, sent, method):
    response = getattr(client, method)(URL, HTTP_AUTHORIZATION=AUTH)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert pending() == [] and sent == []


def test_a_body_over_64_kib_is_413_and_exactly_64_kib_is_read(client, webhook_on, sent):
    padding = " " * (MAX_BODY_BYTES - len(json.dumps({"itemId": A})))
    fits = json.dumps({"itemId": A}) + padding
    assert len(fits.encode()) == MAX_BODY_BYTES
    assert post(client, fits).status_code == 202
    PendingItemRead.objects.all().delete()
    response = post(client, fits + " ")
    assert response.status_code == 413
    assert "65,536 bytes" in response.json()["error"]
    assert pending() == []


def test_a_declared_length_over_the_limit_is_refused_before_anything_is_read(client, webhook_on, sent):
    stream = io.BytesIO(b"")
    response = post(client, b"", CONTENT_LENGTH=str(10**12), **{"wsgi.input": stream})
    assert response.status_code == 413


def test_a_chunked_body_the_server_decoded_is_read_bounded(client, webhook_on, sent):
    """gunicorn de-chunks a body without length and says so with wsgi.input_terminated."""
    chunked = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "", "wsgi.input_terminated": True}
    small = io.BytesIO(json.dumps({"itemId": A}).encode())
    assert post(client, b"", **chunked, **{"wsgi.input": small}).status_code == 202
    assert pending() == [A]
    endless = EndlessStream()
    assert post(client, b"", **chunked, **{"wsgi.input": endless}).status_code == 413
    assert endless.served <= MAX_BODY_BYTES + 1


def test_a_chunked_body_the_server_left_encoded_is_411_not_taken_for_an_empty_call(client, webhook_on, sent):
    response = post(client, b"", HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    assert response.status_code == 411
    assert sent == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"itemId": "' + "a" * 65 + '"}', "longer than the 64 characters"),
        ('{"itemId": true}', "not a boolean"),
        ("{not json at all", "the body's JSON cannot be read"),
        ('{"itemIds": [' + ",".join(f'"{n:024x}"' for n in range(1001)) + "]}", "at most 1000"),
    ],
)
def test_ids_that_cannot_be_item_ids_are_400_naming_the_problem_and_record_nothing(
    client, webhook_on, sent, body, message
):
    response = post(client, body, query=f"?itemId={B}")
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert pending() == [] and sent == []


def test_a_broker_out_of_reach_still_answers_202_keeps_the_rows_and_warns_without_the_secret(
    client, webhook_on, caplog, django_capture_on_commit_callbacks
):
    with broker_unreachable(celery_app), django_capture_on_commit_callbacks(execute=True):
        response = post(client, json.dumps({"itemId": A}))
    assert response.status_code == 202
    assert pending() == [A]
    assert "could not queue alloysync.read_items" in caplog.text
    assert_secret_not_logged(caplog)


# WSGI hands headers over as latin-1 text (PEP 3333): any byte a client can send is one of these.
header_text = st.text(st.characters(max_codepoint=255), max_size=80)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["HTTP_AUTHORIZATION", "HTTP_X_API_KEY", "HTTP_COOKIE", "HTTP_PROXY_AUTHORIZATION"]),
    value=header_text
    | st.sampled_from([SECRET, AUTH, f"bearer {SECRET}"])
    | st.builds(lambda t: f"Bearer {t}", header_text),
)
def test_no_header_but_bearer_and_the_secret_authenticates(webhook_on, sent, name, value):
    response = Client().post(URL, data="{}", content_type="application/json", **{name: value})
    scheme, _, token = value.partition(" ")
    authenticated = name == "HTTP_AUTHORIZATION" and scheme.lower() == "bearer" and token.strip() == SECRET
    assert response.status_code == (202 if authenticated else 401)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["itemId", "itemIds", "item", "x"]) | st.text(max_size=5), children, max_size=4
            )
        ),
        max_leaves=12,
    ),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_any_json_body_is_202_or_400_never_a_server_error(webhook_on, sent, body, content_type):
    response = Client().post(URL, data=json.dumps(body), content_type=content_type, HTTP_AUTHORIZATION=AUTH)
    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]


def test_over_a_real_socket_a_huge_declared_length_is_413_without_sending_the_body(live_server, webhook_on, sent):
    host, port = live_server.thread.host, live_server.thread.port
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**12}\r\n\r\n".encode()
        )
        answer = connection.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413")


def assert_secret_not_logged(caplog) -> None:
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.__dict__)


class EndlessStream:
    """A request stream that never ends: only a bounded read returns."""

    def __init__(self) -> None:
        self.served = 0

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "an unbounded read of an endless body"
        self.served += size
        return b" " * size

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)
