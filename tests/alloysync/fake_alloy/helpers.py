"""Helpers for the fake Alloy's tests: AQS bodies, plain httpx calls, and checks of Alloy's shapes."""

from __future__ import annotations

import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx

from alloysync.fake_alloy import SAMPLE_DESIGN_CODE

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


def last_edit(kind: str, when: str) -> dict[str, Any]:
    """A ``GreaterThan`` or ``LessThan`` node on ``lastEditDate`` against the DateTime ``when``."""
    return {"type": kind, "children": [item_property("lastEditDate"), value("DateTime", when)]}


def sorted_by(body: dict[str, Any], item_property_name: str, order: str = "Ascending") -> dict[str, Any]:
    """``body`` with its ``sortInfo`` replaced."""
    body["aqs"]["properties"]["sortInfo"] = {"itemProperty": item_property_name, "sortOrder": order}
    return body


class Received(NamedTuple):
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on a loopback port: records each request, answers ``status`` after ``delay`` s."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.received: list[Received] = []
        self.status = 200
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/alloy"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.received.append(Received("POST", url.path, parse_qs(url.query), headers, body))
        time.sleep(self.server.delay)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass
