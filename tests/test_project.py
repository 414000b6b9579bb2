"""Project-level guarantees: migrations match models, settings fail loudly where they must."""

import os
import shutil
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command

from tests.helpers import PROJECT_DIR


@pytest.mark.django_db
def test_models_and_migrations_do_not_drift():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:
        pytest.fail(f"models changed without a migration:\n{out.getvalue()} (exit {exc.code})")


def django_check(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "ALLOY_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_without_a_secret_key_refuses_to_start():
    result = django_check(DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_DEBUG is false" in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    key_file = tmp_path / "secret"
    key_file.write_text("a-real-secret-key-from-a-mounted-file-0123456789-abcdef\n")
    assert django_check(DJANGO_DEBUG="false", DJANGO_SECRET_KEY_FILE=str(key_file)).returncode == 0


def test_an_unreadable_secret_file_is_named():
    result = django_check(ALLOY_API_KEY_FILE="/nonexistent/alloy-key")
    assert result.returncode != 0
    assert "ALLOY_API_KEY_FILE points at '/nonexistent/alloy-key', which cannot be read" in result.stderr


def test_a_bad_number_setting_is_named():
    result = django_check(JOB_TIME_LIMIT="-5")
    assert result.returncode != 0
    assert result.stderr == (
        "alloysync cannot start: JOB_TIME_LIMIT must be a number of seconds above zero and at most 31622400, got '-5'\n"
    )


def test_manage_py_outside_the_virtualenv_says_how_to_use_it_in_one_line():
    python = shutil.which("python3", path=os.defpath)  # the system's, not the virtualenv's
    if python is None or subprocess.run([python, "-I", "-c", "import django"], capture_output=True).returncode == 0:
        pytest.skip("needs a Python without Django")
    result = subprocess.run([python, "-I", "manage.py", "check"], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "run `. .venv/bin/activate` or use .venv/bin/python manage.py" in result.stderr
