"""Operators' logs: one line per job run and per sync, plain or JSON."""

import json
import os
import subprocess
import sys

from tests.helpers import PROJECT_DIR


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_json_logs_carry_the_run_ids_outcome_and_duration(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "LOG_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'logs.sqlite3'}", LOG_FORMAT="json", VAR_DIR=str(tmp_path))
    assert manage("migrate", env=env).returncode == 0
    create = (
        "from scheduler.jobspec import job_spec_build; from scheduler.services import job_create; "
        "job_create(spec=job_spec_build(name='logged', cron='@daily', timezone='UTC', "
        'steps=\'examples.fail {"message": "pump down"}\'))'
    )
    assert manage("shell", "-c", create, env=env).returncode == 0
    result = manage("run_job", "logged", env=env)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    (run_line,) = [line for line in lines if line.get("logger") == "scheduler.runner"]
    assert run_line["level"] == "WARNING"
    assert run_line["message"].startswith("run 1 of job 1 failed (command) in ")
    assert run_line["message"].endswith("step 1 (examples.fail) failed: RuntimeError: pump down")
    assert (run_line["run_id"], run_line["job_id"], run_line["status"]) == (1, 1, "failed")
    assert run_line["seconds"] >= 0


def test_an_unknown_log_format_is_refused_by_name():
    result = manage("check", env={**os.environ, "LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert result.stderr == "alloysync cannot start: LOG_FORMAT must be one of plain, json, got 'xml'\n"


def test_with_debug_on_a_refused_request_is_logged_once_in_the_chosen_format(tmp_path):
    # Django's own console handler (DEBUG only) used to print each 4xx a second time, unformatted.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "LOG_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'logs.sqlite3'}", LOG_FORMAT="json", DJANGO_DEBUG="true")
    env.update(DJANGO_ALLOWED_HOSTS="localhost", VAR_DIR=str(tmp_path))
    assert manage("migrate", env=env).returncode == 0
    refused = (
        "from django.test import Client; "
        "Client().get('/api/v1/jobs/', HTTP_AUTHORIZATION='Token nope', HTTP_HOST='localhost')"
    )
    result = manage("shell", "-c", refused, env=env)
    lines = [line for line in result.stderr.splitlines() if "/api/v1/jobs/" in line]
    assert len(lines) == 1, result.stderr
    assert json.loads(lines[0])["logger"] == "django.request", lines[0]
