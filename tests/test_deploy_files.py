"""deploy/ and docker-compose.yml: the alert rules, the Grafana dashboard and their wiring agree.

Every metric an expression names is one alloysync publishes (a misspelt name is an alert that never
fires and a panel that stays empty, silently), with labels it has; the files docker-compose mounts
exist where Prometheus and Grafana look for them. With promtool installed, the rules are also
checked and unit-tested by it (deploy/prometheus/alerts_test.yml).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import PROJECT_DIR

DEPLOY = PROJECT_DIR / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "alloysync.json"

# The public metrics (issue 14), each with its kind and labels: what /metrics serves.
COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "alloysync_job_runs_total": (COUNTER, frozenset({"source", "trigger", "outcome"})),
    "alloysync_job_run_duration_seconds": (HISTOGRAM, frozenset({"source"})),
    "alloysync_job_run_lag_seconds": (HISTOGRAM, frozenset({"source"})),
    "alloysync_syncs_total": (COUNTER, frozenset({"mode", "outcome"})),
    "alloysync_alloy_requests_total": (COUNTER, frozenset({"endpoint", "status"})),
    "alloysync_alloy_rate_limited_total": (COUNTER, frozenset({"endpoint"})),
    "alloysync_write_back_backlog": (GAUGE, frozenset()),
    "alloysync_jobs": (GAUGE, frozenset({"state"})),
    "alloysync_last_successful_sync_timestamp_seconds": (GAUGE, frozenset()),
    "alloysync_seconds_since_last_successful_sync": (GAUGE, frozenset()),
    "alloysync_beat_leader": (GAUGE, frozenset()),
}
# The values of the labels that take few (README, "What is measured").
LABEL_VALUES: dict[str, set[str]] = {
    "state": {"scheduled", "paused", "failing", "invalid", "removed"},
    "source": {"local", "alloy"},
    "trigger": {"schedule", "manual", "command", "alloy", "api"},
    "mode": {"full", "incremental", "items"},
}
OUTCOMES = {
    "alloysync_job_runs_total": {"succeeded", "failed", "skipped"},
    "alloysync_syncs_total": {"succeeded", "failed", "refused"},
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Series of Prometheus itself that the rules may name.
PROMETHEUS_SERIES: dict[str, frozenset[str]] = {"up": frozenset()}

_SERIES_NAME = re.compile(r"\b(alloysync_[a-z0-9_]+|up)\b(\{[^}]*\})?")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_DURATION = re.compile(r"(\d+[smhdwy])+")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def series_labels(name: str) -> frozenset[str] | None:
    """The labels the series ``name`` has, or None if alloysync publishes no such series."""
    if name in PROMETHEUS_SERIES:
        return PROMETHEUS_SERIES[name]
    for metric, (kind, labels) in METRICS.items():
        if kind == HISTOGRAM:
            if name == f"{metric}_bucket":
                return labels | {"le"}
            if name in (f"{metric}_sum", f"{metric}_count"):
                return labels
        elif name == metric:
            return labels
    return None


def expression_faults(expr: str) -> list[str]:
    """What is wrong with the series ``expr`` selects: unknown names, labels they lack, unknown states."""
    faults = []
    found = _SERIES_NAME.findall(expr)
    if not found:
        faults.append(f"{expr!r} names no alloysync series")
    for name, selector in found:
        labels = series_labels(name)
        if labels is None:
            faults.append(f"{name} is not a series alloysync publishes")
            continue
        for label, operator, value in _MATCHER.findall(selector):
            if label not in labels | TARGET_LABELS:
                faults.append(f"{name} has no label {label!r}")
            known = OUTCOMES.get(name, set()) if label == "outcome" else LABEL_VALUES.get(label)
            if known is not None and operator == "=" and value not in known:
                faults.append(f"{name} has no {label} {value!r}")
    return faults


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def compose() -> dict[str, Any]:
    return load_yaml(PROJECT_DIR / "docker-compose.yml")


def test_every_alert_rule_names_published_series_and_says_what_to_do():
    seen = set()
    for rule in rules():
        assert rule["alert"] not in seen, f"two rules named {rule['alert']}"
        seen.add(rule["alert"])
        assert expression_faults(rule["expr"]) == [], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "for" not in rule or _DURATION.fullmatch(rule["for"]), rule["alert"]


def test_the_rules_cover_what_the_issue_asks_for():
    exprs = {rule["alert"]: rule["expr"] for rule in rules()}
    wanted = {
        "AlloysyncJobFailing": 'alloysync_jobs{state="failing"}',
        "AlloysyncRunsFailed": 'alloysync_job_runs_total{outcome="failed"}',
        "AlloysyncSyncStale": "alloysync_seconds_since_last_successful_sync",
        "AlloysyncSyncNeverSucceeded": "absent(alloysync_seconds_since_last_successful_sync)",
        "AlloysyncNoBeatLeader": "max(alloysync_beat_leader) == 0",
        "AlloysyncRunLagHigh": "alloysync_job_run_lag_seconds_bucket",
        "AlloysyncAlloyRateLimited": "alloysync_alloy_rate_limited_total",
        "AlloysyncWriteBackBacklogGrowing": "alloysync_write_back_backlog",
    }
    for alert, fragment in wanted.items():
        assert fragment in exprs.get(alert, ""), alert


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed (Debian: prometheus package)")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run(
            ["promtool", *command], cwd=RULES.parent, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_panel_queries_published_series_from_the_provisioned_data_source():
    board = dashboard()
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uid = datasources[0]["uid"]
    assert board["schemaVersion"] >= 39 and board["uid"] == "alloysync"
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            assert expression_faults(target["expr"]) == [], panel["title"]


def test_dashboard_panels_do_not_overlap_and_fit_the_24_column_grid():
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_dashboard_shows_what_the_issue_asks_for():
    queried = " ".join(target["expr"] for panel in dashboard()["panels"] for target in panel["targets"])
    for name in (
        "alloysync_job_runs_total",
        'alloysync_jobs{state="failing"}',
        "max by (state) (alloysync_jobs)",
        "histogram_quantile(0.5, sum by (le, source) (max without (instance) (rate(alloysync_job_run_duration",
        "histogram_quantile(0.95, sum by (le, source) (max without (instance) (rate(alloysync_job_run_duration",
        "histogram_quantile(0.95, sum by (le, source) (max without (instance) (rate(alloysync_job_run_lag",
        "alloysync_syncs_total",
        "alloysync_seconds_since_last_successful_sync",
        "alloysync_alloy_requests_total",
        "alloysync_alloy_rate_limited_total",
        "alloysync_write_back_backlog",
        "alloysync_beat_leader",
    ):
        assert name in queried


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's bind mounts of this project's files: container path -> project path."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = source[2:]
    return found


def test_prometheus_loads_the_rules_and_sends_the_token_the_web_service_reads():
    services = compose()["services"]
    config = load_yaml(DEPLOY / "prometheus.yml")
    prometheus_files = mounts(services["prometheus"])
    assert prometheus_files["/etc/prometheus/prometheus.yml"] == "deploy/prometheus.yml"
    for rule_file in config["rule_files"]:
        assert prometheus_files[rule_file] == "deploy/prometheus/alerts.yml"
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    assert "8000:8000" in services["web"]["ports"]
    token_file = job["authorization"]["credentials_file"]
    assert token_file == "/run/secrets/metrics_token" and "metrics_token" in services["prometheus"]["secrets"]
    assert services["web"]["environment"]["METRICS_TOKEN_FILE"] == token_file
    assert "metrics_token" in services["web"]["secrets"]


def test_grafana_is_provisioned_from_deploy_grafana():
    services = compose()["services"]
    grafana_files = mounts(services["grafana"])
    assert grafana_files["/etc/grafana/provisioning"] == "deploy/grafana/provisioning"
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "alloysync.yml")["providers"][0]
    assert grafana_files[provider["options"]["path"]] == "deploy/grafana/dashboards"
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"


def test_compose_profiles_and_every_file_they_mount_exist():
    services = compose()["services"]
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    assert services["prometheus"]["profiles"] == ["metrics"] and services["grafana"]["profiles"] == ["metrics"]
    assert not any("profiles" in services[name] for name in ("postgres", "redis", "web", "worker", "beat"))
    for name, service in services.items():
        for path in mounts(service).values():
            assert (PROJECT_DIR / path).exists(), f"{name} mounts {path}, which is missing"


def test_env_example_names_every_variable_docker_compose_reads():
    text = (PROJECT_DIR / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (PROJECT_DIR / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert used - named == set()
