"""The OpenAPI schema: valid OpenAPI 3, and the same paths, methods and answers as the views."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

from tests.api.conftest import READ

pytestmark = pytest.mark.django_db

# Not operations of the API: the index of links and the schema itself.
NOT_IN_SCHEMA = {"/api/v1/", "/api/v1/schema/", "/api/v1/docs/", "/api/v1/.*"}  # .*: the JSON 404


@pytest.fixture
def schema(token_for):
    from tests.api.conftest import client_with

    response = client_with(token_for("viewer", READ)).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def _api_paths() -> set[str]:
    """Every path the URLconf serves under /api/v1/, in OpenAPI's {id} form."""
    found: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            text = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, text)
            elif isinstance(pattern, URLPattern) and text.startswith("api/v1/"):
                path = "/" + text.replace("^", "").replace("$", "")
                path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)
                found.add(path.replace("{pk}", "{id}"))

    walk(get_resolver().url_patterns, "")
    return found


def test_the_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_every_api_path_is_in_the_schema_and_every_schema_path_is_served(schema):
    assert set(schema["paths"]) == _api_paths() - NOT_IN_SCHEMA


def test_each_operation_documents_the_answers_it_gives(schema):
    paths = schema["paths"]
    assert set(paths["/api/v1/jobs/{id}/runs/"]) == {"post"}
    run = paths["/api/v1/jobs/{id}/runs/"]["post"]
    assert {"202", "400", "401", "403", "404", "409", "429"} <= set(run["responses"])
    assert "requestBody" in run
    assert {"200", "400", "404", "409"} <= set(paths["/api/v1/jobs/{id}/pause/"]["post"]["responses"])
    assert {"202", "409", "503", "403"} <= set(paths["/api/v1/syncs/"]["post"]["responses"])
    runs_list = paths["/api/v1/runs/"]["get"]
    assert {p["name"] for p in runs_list["parameters"]} >= {"job", "status", "trigger", "cursor", "page_size"}
    jobs_list = paths["/api/v1/jobs/"]["get"]
    assert {p["name"] for p in jobs_list["parameters"]} >= {"source", "paused", "failing", "removed", "page"}
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert {"next_run_at", "cron_description", "last_run", "paused_by", "steps"} <= set(job)


def test_the_schema_needs_a_login():
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/schema/").status_code == 401


def test_the_docs_page_serves_swagger_ui_from_the_project_not_a_cdn(django_user_model, client):
    client.force_login(django_user_model.objects.create_superuser("root"))
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html and "/api/v1/schema/" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
