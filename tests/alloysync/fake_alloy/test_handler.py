"""The fake Alloy's HTTP side: rate-limit headers on every answer, Alloy's error shape."""

from __future__ import annotations

import httpx
import pytest

from alloysync.fake_alloy import FakeAlloyServer
from tests.alloysync.fake_alloy.helpers import ALLOY_TIMESTAMP, assert_alloy_error

pytestmark = pytest.mark.timeout(60)


def test_it_sends_rate_limit_headers_on_every_response(server: FakeAlloyServer, http: httpx.Client) -> None:
    responses = [http.get("/api/session/me"), http.get("/api/nowhere"), httpx.get(f"{server.url}/api/session/me")]

    for response in responses:
        assert int(response.headers["X-Rate-Limit-Remaining"]) >= 0
        assert ALLOY_TIMESTAMP.match(response.headers["X-Rate-Limit-Reset"])


def test_an_unknown_endpoint_is_a_404_in_alloys_error_shape(http: httpx.Client) -> None:
    assert_alloy_error(http.get("/api/nowhere"), 404, "ResourceNotFound")


def test_it_rejects_a_body_that_is_not_json(http: httpx.Client) -> None:
    response = http.post("/api/aqs/query", params={"page": 1, "pageSize": 10}, content=b"{not json")

    assert_alloy_error(response, 400, "AqsInvalidQuery")
