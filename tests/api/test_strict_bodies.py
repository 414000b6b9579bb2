"""Bodies the API's JSON parser refuses before any serializer or database sees them (lone surrogates,
duplicate keys, numbers it cannot read, a body over the size limit), the fields' strict types, and the
Authorization scheme's message. Every refusal is JSON naming where; never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scheduler.api_tokens import token_create
from scheduler.models import JobRun
from tests.api.conftest import client_with

pytestmark = pytest.mark.django_db

RELAXED = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture
def job_and_client(make_job, django_user_model):
    job = make_job(steps='examples.echo {"message": "hi"}')
    _, key = token_create(user=django_user_model.objects.create_superuser("root"))
    return job, client_with(key)


def _paths(job):
    return [f"/api/v1/jobs/{job.pk}/runs/", f"/api/v1/jobs/{job.pk}/pause/", "/api/v1/syncs/"]


def _post(client, path, raw: bytes):
    return client.post(path, raw, content_type="application/json")


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"\\ud800": 1}', "non_field_errors"),
        (b'{"kwargs": {"\\ud800": {"message": "x"}}}', "kwargs"),
        (b'{"kwargs": {"1": {"message": "a\\udfffb"}}}', "kwargs.1.message"),
        (b'{"kwargs": {"1": {"m": ["ok", {"\\udc00x": 1}]}}}', "kwargs.1.m.1"),
        (b'{"note": "\\ud800"}', "note"),
    ],
)
def test_a_lone_surrogate_anywhere_is_refused_naming_where(job_and_client, raw, where):
    job, client = job_and_client
    for path in _paths(job):
        response = _post(client, path, raw)
        assert response.status_code == 400, (path, response.content)
        assert list(response.json()["errors"]) == [where]
        assert "surrogate" in response.json()["detail"]
    assert not JobRun.objects.exists()


PLAIN_TEXT = st.text(max_size=8, alphabet=st.characters(codec="utf-8"))
SURROGATE_TEXT = st.builds(
    lambda before, lone, after: before + lone + after,
    PLAIN_TEXT,
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    PLAIN_TEXT,
)


def _with_surrogate(draw_keys):
    return st.recursive(
        SURROGATE_TEXT,
        lambda children: (
            st.lists(children, min_size=1, max_size=3) | st.dictionaries(draw_keys, children, min_size=1, max_size=3)
        ),
        max_leaves=6,
    )


@RELAXED
@given(
    body=st.one_of(
        _with_surrogate(PLAIN_TEXT),
        st.dictionaries(SURROGATE_TEXT, st.integers(), min_size=1, max_size=2),
        st.builds(
            lambda inner: {"kwargs": {"1": inner}},
            st.dictionaries(SURROGATE_TEXT | PLAIN_TEXT, _with_surrogate(PLAIN_TEXT), min_size=1, max_size=2),
        ),
    )
)
def test_any_json_with_a_lone_surrogate_is_a_400_naming_where(job_and_client, body):
    job, client = job_and_client
    raw = json.dumps(body).encode()  # ensure_ascii: surrogates as \\uXXXX escapes, as a client sends them
    for path in _paths(job):
        response = _post(client, path, raw)
        assert response.status_code == 400, (path, response.content)
        data = response.json()
        assert "surrogate" in data["detail"] and len(data["errors"]) == 1


@pytest.mark.parametrize(
    ("raw", "where", "key"),
    [
        (b'{"kwargs": {"1": {"message": "a"}}, "kwargs": {"1": {"message": "b"}}}', "non_field_errors", "kwargs"),
        (b'{"note": "x", "note": "y"}', "non_field_errors", "note"),
        (b'{"full": true, "full": false}', "non_field_errors", "full"),
        (b'{"kwargs": {"1": {"message": "a", "message": "b"}}}', "kwargs.1", "message"),
        (b'{"kwargs": {"1": {}, "1": {}}}', "kwargs", "1"),
    ],
)
def test_a_key_twice_in_one_object_is_refused_naming_it(job_and_client, raw, where, key):
    job, client = job_and_client
    for path in _paths(job):
        response = _post(client, path, raw)
        assert response.status_code == 400, (path, response.content)
        assert list(response.json()["errors"]) == [where]
        assert f"the key {key!r} is given twice" in response.json()["detail"]
    assert not JobRun.objects.exists()


@RELAXED
@given(key=PLAIN_TEXT, first=st.integers(), second=st.text(max_size=5), depth=st.integers(0, 3))
def test_any_duplicate_key_at_any_depth_is_a_400(job_and_client, key, first, second, depth):
    job, client = job_and_client
    raw = "{" + json.dumps(key) + ":" + json.dumps(first) + "," + json.dumps(key) + ":" + json.dumps(second) + "}"
    for _ in range(depth):
        raw = '{"kwargs": ' + raw + "}" if _ == 0 else '{"x": ' + raw + "}"
    for path in _paths(job):
        response = _post(client, path, raw.encode())
        assert response.status_code == 400, (path, response.content)
        assert "is given twice" in response.json()["detail"]


def test_numbers_the_api_cannot_read_are_named_without_python_advice(job_and_client):
    job, client = job_and_client
    path = f"/api/v1/jobs/{job.pk}/runs/"
    response = _post(client, path, b'{"kwargs": {"1": {"message": ' + b"1" * 5000 + b"}}}")
    assert response.status_code == 400
    assert response.json()["errors"] == {"kwargs.1.message": ["a number in the body has more than 4300 digits"]}
    assert "sys." not in response.content.decode()
    response = _post(client, path, b'{"kwargs": {"1": {"message": -1e400}}}')
    assert response.json()["detail"] == (
        "Invalid request: kwargs.1.message: -1e400 is too large a number (it overflows to infinity)"
    )
    response = _post(client, path, b'{"kwargs": {"1": {"message": [NaN]}}}')
    assert response.json()["errors"] == {"kwargs.1.message.0": ["NaN is not a number JSON allows"]}


def test_a_body_over_the_upload_limit_is_a_413_naming_the_limit(job_and_client, settings):
    job, client = job_and_client
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    for path in _paths(job):
        response = _post(client, path, b'{"kwargs": {"1": {"message": "' + b"x" * 2000 + b'"}}}')
        assert response.status_code == 413, (path, response.content)
        assert response["Content-Type"] == "application/json"
        assert "1000 bytes" in response.json()["detail"] and "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]
    # At the limit, read as usual.
    response = _post(client, _paths(job)[0], b'{"kwargs": {"1": {"message": "' + b"x" * 900 + b'"}}}')
    assert response.status_code == 202


def test_a_body_larger_than_it_says_is_refused_when_read(job_and_client, settings):
    job, client = job_and_client
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"note": "' + b"x" * 2000 + b'"}'
    response = client.generic("POST", f"/api/v1/jobs/{job.pk}/pause/", body, "application/json", CONTENT_LENGTH="")
    assert response.status_code in (413, 400)  # no length: nothing read, an empty body
    response = client.generic("POST", f"/api/v1/jobs/{job.pk}/pause/", body, "application/json")
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/syncs/", {"full": "yes"}, "full"),
        ("/api/v1/syncs/", {"full": 1}, "full"),
        ("/api/v1/syncs/", {"full": "on"}, "full"),
        ("/api/v1/syncs/", {"full": "true"}, "full"),
        ("/api/v1/syncs/", {"full": None}, "full"),
        ("pause", {"note": 1}, "note"),
        ("pause", {"note": True}, "note"),
        ("pause", {"note": ["x"]}, "note"),
    ],
)
def test_fields_take_only_their_json_type(job_and_client, settings, path, body, field):
    settings.ALLOY_API_KEY, settings.ALLOY_JOB_DESIGN = "k" * 40, "designs_jobs"
    job, client = job_and_client
    path = f"/api/v1/jobs/{job.pk}/pause/" if path == "pause" else path
    response = client.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize("key", ["01", " 1 ", "+1", "1 ", "-1", "1.0", "0", "00000000000000000000001", "9" * 5000])
def test_a_step_key_is_a_plain_number_or_a_function_name_exactly(job_and_client, key):
    job, client = job_and_client
    response = client.post(f"/api/v1/jobs/{job.pk}/runs/", {"kwargs": {key: {"message": "x"}}}, format="json")
    assert response.status_code == 400, response.content
    (where,) = response.json()["errors"]
    assert where == f"kwargs.{key[:50]}"
    assert "sys." not in response.content.decode()
    for good in ["1", "examples.echo"]:
        response = client.post(f"/api/v1/jobs/{job.pk}/runs/", {"kwargs": {good: {"message": "x"}}}, format="json")
        assert response.status_code == 202


def test_credentials_in_another_scheme_are_told_the_schemes_accepted(job_and_client):
    response = client_with("dXNlcjpwYXNz", scheme="Basic").get("/api/v1/jobs/")
    assert response.status_code == 401
    assert "must be Token or Bearer" in response.json()["detail"]
