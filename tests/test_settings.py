"""Settings are read strictly, and secrets stay secret.

``read_settings`` runs ``config/settings.py`` afresh in this process with a chosen environment, so
each value goes through the real settings module; the tests at the end start real ``manage.py``,
``celery`` and ``gunicorn`` processes to show what an operator sees: one line naming the variable.
"""

from __future__ import annotations

import math
import os
import re
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import h11
import psycopg
import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config.env import SettingError, shown
from config.env_secrets import RedactedText, Secret
from tests.helpers import PROJECT_DIR

# Every variable config/settings.py reads starts with one of these, or is one of SETTING_NAMES.
SETTING_PREFIXES = ("DJANGO_", "ALLOY_", "JOB_", "BEAT_", "LOG_", "CELERY_", "EMAIL_", "SYNC_")
SETTING_NAMES = ("DATABASE_URL", "VAR_DIR", "WRITE_BACK_INTERVAL", "SITE_URL", "DEFAULT_FROM_EMAIL")
VAR_DIR = str(Path(tempfile.gettempdir()) / "alloysync-test-settings")

# Every number setting, what it may hold, and whether it must be whole.
SECONDS = ["JOB_TIME_LIMIT", "JOB_CATCHUP_WINDOW", "JOB_HEARTBEAT_INTERVAL", "BEAT_LEASE_TTL"]
SECONDS += ["ALLOY_TIMEOUT", "ALLOY_SYNC_INTERVAL", "JOB_LOST_AFTER"]
SECONDS += ["ALLOY_FULL_SYNC_INTERVAL", "ALLOY_SYNC_LOOK_BACK", "WRITE_BACK_INTERVAL"]
WHOLE_NUMBERS = {"ALLOY_PAGE_SIZE": (1, 1000), "JOB_RESULT_MAX_BYTES": (1, 2**31 - 1), "ALLOY_WRITE_RATE": (1, 6000)}
WHOLE_NUMBERS["DJANGO_SECURE_HSTS_SECONDS"] = (0, 2**31 - 1)
WHOLE_NUMBERS |= {"JOB_AUTO_PAUSE_AFTER": (0, 10000), "ALLOY_SYNC_ALERT_AFTER": (1, 10000)}
WHOLE_NUMBERS |= {"JOB_RUN_RETENTION_DAYS": (0, 36600), "SYNC_RUN_RETENTION_DAYS": (0, 36600)}
FLAGS = ["DJANGO_DEBUG", "DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS"]
FLAGS += ["DJANGO_SECURE_HSTS_PRELOAD", "ALLOY_ALLOW_PLAIN_HTTP"]
# Where each setting lands when it is not under its own name.
STORED_AS = {
    "DJANGO_DEBUG": "DEBUG",
    "DJANGO_SECURE_SSL_REDIRECT": "_SSL_REDIRECT",
    "DJANGO_SECURE_HSTS_SECONDS": "_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_SECURE_HSTS_PRELOAD": "_HSTS_PRELOAD",
}
API_KEY = "5e0c7a1d-2b3f-4c4d-8e5f-6a7b8c9d0e1f"


def clean_environment(**env: str) -> dict[str, str]:
    """This process's environment without any of the project's settings, plus ``env``."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(SETTING_PREFIXES) and key not in SETTING_NAMES
    }
    return {**kept, "VAR_DIR": VAR_DIR, **env}


def read_settings(**env: str) -> dict[str, Any]:
    """The settings module's names after running it with only ``env`` set; raises SettingError."""
    with mock.patch.dict(os.environ, clean_environment(**env), clear=True):
        return runpy.run_path(str(PROJECT_DIR / "config" / "settings.py"))


def refusal(**env: str) -> str:
    """The one-line message that refuses ``env``."""
    with pytest.raises(SettingError) as refused:
        read_settings(**env)
    message = str(refused.value)
    assert "\n" not in message
    return message


def run(command: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=clean_environment(**env), capture_output=True, text=True, timeout=timeout
    )


# --- The faults found, each refused with one line that names the variable -------------------------

SECONDS_ACCEPTS = "a number of seconds above zero and at most 31622400"
FAULTS = {
    "JOB_TIME_LIMIT=abc": f"JOB_TIME_LIMIT must be {SECONDS_ACCEPTS}, got 'abc'",
    "JOB_TIME_LIMIT=-5": f"JOB_TIME_LIMIT must be {SECONDS_ACCEPTS}, got '-5'",
    "JOB_TIME_LIMIT=nan": f"JOB_TIME_LIMIT must be {SECONDS_ACCEPTS}, got 'nan'",
    "JOB_TIME_LIMIT=30s": f"JOB_TIME_LIMIT must be {SECONDS_ACCEPTS}, got '30s'",
    "ALLOY_TIMEOUT=1,5": f"ALLOY_TIMEOUT must be {SECONDS_ACCEPTS}, got '1,5'",
    "ALLOY_PAGE_SIZE=0.5": "ALLOY_PAGE_SIZE must be a whole number from 1 to 1000, got '0.5'",
    "JOB_RESULT_MAX_BYTES=64k": "JOB_RESULT_MAX_BYTES must be a whole number from 1 to 2147483647, got '64k'",
    "JOB_DEFAULT_TIMEZONE=Mars/Olympus": (
        "JOB_DEFAULT_TIMEZONE must be an IANA time zone such as Europe/London or UTC, got 'Mars/Olympus'"
    ),
    "JOB_DEFAULT_TIMEZONE=../../etc/passwd": (
        "JOB_DEFAULT_TIMEZONE must be an IANA time zone such as Europe/London or UTC, got '../../etc/passwd'"
    ),
    "ALLOY_MAX_REMOVAL_FRACTION=2": "ALLOY_MAX_REMOVAL_FRACTION must be a number from 0 to 1, got '2'",
    "LOG_LEVEL=LOUD": "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'",
    "LOG_FORMAT=xml": "LOG_FORMAT must be one of plain, json, got 'xml'",
    "DJANGO_DEBUG=ture": "DJANGO_DEBUG must be true or false, got 'ture'",
    "DJANGO_SECURE_HSTS_PRELOAD=": "DJANGO_SECURE_HSTS_PRELOAD must be true or false, got ''",
    "DATABASE_URL=nonsense": (
        "DATABASE_URL must be a database URL such as postgres://user:password@host:5432/name or "
        "sqlite:///path/to/file.sqlite3, got 'nonsense'"
    ),
    "DATABASE_URL=mysql://db/alloysync": (
        "DATABASE_URL must be a database URL such as postgres://user:password@host:5432/name or "
        "sqlite:///path/to/file.sqlite3, got 'mysql://db/alloysync'"
    ),
    "DATABASE_URL=postgres://alloysync:hunter2@db:port/alloysync": (
        "DATABASE_URL is not a URL that can be read (check the port and brackets), "
        "got 'postgres://********@db:port/alloysync'"
    ),
    "CELERY_BROKER_URL=redis//localhost": (
        "CELERY_BROKER_URL must be a broker URL starting redis://, rediss://, amqp://, amqps://, pyamqp://, "
        "filesystem://, got 'redis//localhost'"
    ),
    "CELERY_BROKER_URL=redis://:hunter2@[::1:6379/0": (
        "CELERY_BROKER_URL is not a URL that can be read (check the port and brackets), got 'redis://********@[::1:6379/0'"
    ),
    "CELERY_QUEUE=": "CELERY_QUEUE must be a queue name such as alloysync, got ''",
    "VAR_DIR=": "VAR_DIR must be a folder's path, got ''",
    "VAR_DIR=/proc/alloysync": (
        "VAR_DIR must be a folder this process can write (the filesystem broker keeps its messages there), "
        "but '/proc/alloysync/broker' cannot be made: No such file or directory"
    ),
    "DJANGO_ALLOWED_HOSTS=https://example.org": (
        "DJANGO_ALLOWED_HOSTS must be comma-separated host names (example.org, .example.org for its "
        "subdomains, 127.0.0.1, [::1] or *), got 'https://example.org'"
    ),
    "JOB_MODULES=jobs.examples,,jobs.reports": (
        "JOB_MODULES must be comma-separated Python module names such as jobs.examples, "
        "got the empty entry in 'jobs.examples,,jobs.reports'"
    ),
    "JOB_MODULES=jobs.examples,jobs.nope": "JOB_MODULES names 'jobs.nope', which is not a module Python can find",
    "JOB_MODULES=nope.reports": "JOB_MODULES names 'nope.reports', which is not a module Python can find",
    "ALLOY_CRON_ATTRIBUTE=attributes cron": (
        "ALLOY_CRON_ATTRIBUTE must be a code like attributes_scheduledJobsCron, without spaces, got 'attributes cron'"
    ),
    "ALLOY_BASE_URL=http://[::1": (
        "ALLOY_BASE_URL must be Alloy's https:// address, such as https://api.uk.alloyapp.io; "
        "'http://[::1' cannot be read: Invalid port: ':1'"
    ),
    "ALLOY_BASE_URL=ftp://user:pass@host": (
        "ALLOY_BASE_URL must not hold a user name or password (the key is ALLOY_API_KEY), got 'ftp://********@host'"
    ),
    "ALLOY_BASE_URL=ftp://alloy.example.org": (
        "ALLOY_BASE_URL must be Alloy's https:// address, such as https://api.uk.alloyapp.io, "
        "got 'ftp://alloy.example.org'"
    ),
    "ALLOY_BASE_URL=https://": (
        "ALLOY_BASE_URL must be Alloy's https:// address, such as https://api.uk.alloyapp.io, got 'https://'"
    ),
    "ALLOY_BASE_URL=https://api.uk.alloyapp.io?x=1": (
        "ALLOY_BASE_URL must be Alloy's https:// address, such as https://api.uk.alloyapp.io, without a query "
        "or fragment (not shown), got 'https://api.uk.alloyapp.io'?..."
    ),
    "ALLOY_BASE_URL=http://alloy.example.org": (
        "ALLOY_BASE_URL must be https:// (plain http:// sends the key unencrypted: it is allowed to localhost, "
        "127.0.0.0/8 and ::1, or anywhere with ALLOY_ALLOW_PLAIN_HTTP=true), got 'http://alloy.example.org'"
    ),
    "JOB_LOST_AFTER=40": "JOB_LOST_AFTER must be at least twice JOB_HEARTBEAT_INTERVAL (30 s), got 40",
    "DJANGO_DEBUG=false": "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_DEBUG is false",
    "JOB_AUTO_PAUSE_AFTER=-1": "JOB_AUTO_PAUSE_AFTER must be a whole number from 0 to 10000, got '-1'",
    "ALLOY_SYNC_ALERT_AFTER=0": "ALLOY_SYNC_ALERT_AFTER must be a whole number from 1 to 10000, got '0'",
    "JOB_RUN_RETENTION_DAYS=90d": "JOB_RUN_RETENTION_DAYS must be a whole number from 0 to 36600, got '90d'",
    "JOB_ALERT_EMAILS=ops@example.org, on call": (
        "JOB_ALERT_EMAILS must be e-mail addresses separated by commas, such as ops@example.org, "
        "but 'on call' is not one"
    ),
    "EMAIL_URL=smtp+tls://mail.example.org:5x7": (
        "EMAIL_URL is not a URL that can be read (check the port), got 'smtp+tls://mail.example.org:...'"
    ),
    "EMAIL_URL=smtp://mail.example.org:0": (
        "EMAIL_URL must have a port from 1 to 65535, got 'smtp://mail.example.org:...'"
    ),
    "EMAIL_URL=filemail://var/mail": (
        "EMAIL_URL must name an absolute folder, as in filemail:///var/mail/alloysync, got 'filemail://var/...'"
    ),
    "JOB_ALERT_EMAILS=ops@example.org,,oncall@example.org": (
        "JOB_ALERT_EMAILS must be e-mail addresses separated by commas, such as ops@example.org, but '' is not one"
    ),
    "DEFAULT_FROM_EMAIL=Ops <ops>": (
        "DEFAULT_FROM_EMAIL must be one e-mail address, such as ops@example.org or alloysync <ops@example.org>, "
        "got 'Ops <ops>'"
    ),
    "EMAIL_URL=sendmail://localhost": (
        "EMAIL_URL must be a mail URL such as smtp+tls://user:password@host:587, smtps://user:password@host:465 "
        "or consolemail://, got 'sendmail://localhost'"
    ),
    "EMAIL_URL=smtp+tls://": (
        "EMAIL_URL must name the mail server, as in smtp+tls://user:password@host:587, "
        "smtps://user:password@host:465 or consolemail://, got 'smtp+tls://'"
    ),
    "SITE_URL=alloysync.example.org": (
        "SITE_URL must be an http:// or https:// address such as https://alloysync.example.org, "
        "got 'alloysync.example.org'"
    ),
    "JOB_ALERT_WEBHOOK_URL=hooks.slack.com/services/T0/B0/t0ken": (
        "JOB_ALERT_WEBHOOK_URL must be an http:// or https:// address such as "
        "https://hooks.slack.com/services/T000/B000/XXXX, got a value without http:// or https:// (not shown)"
    ),
}


def test_two_read_settings_on_one_attribute_are_refused() -> None:
    message = refusal(ALLOY_CRON_ATTRIBUTE="attributes_cron", ALLOY_TIME_LIMIT_ATTRIBUTE="attributes_cron")
    assert message == (
        "ALLOY_TIME_LIMIT_ATTRIBUTE must be an attribute of its own, but ALLOY_CRON_ATTRIBUTE names the same one "
        "('attributes_cron')"
    )


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    token=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16),
    shape=st.sampled_from(
        [
            "ftp://hooks.example.org/services/{token}",
            "hooks.example.org/services/{token}",
            "https://hooks.example.org:99999/services/{token}",
            "https://user:{token}@/x",
            "https://[::1/services/{token}",
            "https://hooks example.org/{token}",
            "https://hooks.example.org/services/{token}",
            "https://hooks.example.org/workflows?sig={token}",
        ]
    ),
)
def test_an_alert_webhook_url_is_a_secret_never_shown(token: str, shape: str) -> None:
    # Slack's and Teams' incoming-webhook URLs are their own credential (the token is in the path or query).
    try:
        read = read_settings(JOB_ALERT_WEBHOOK_URL=shape.format(token=token))
    except SettingError as refused:
        assert str(refused).startswith("JOB_ALERT_WEBHOOK_URL") and token not in str(refused)
        return
    assert isinstance(read["JOB_ALERT_WEBHOOK_URL"], Secret)
    assert read["JOB_ALERT_WEBHOOK_URL"].reveal() == shape.format(token=token)
    assert token not in repr(read["JOB_ALERT_WEBHOOK_URL"])


def test_the_mail_url_sets_django_mail_and_hides_its_password() -> None:
    read = read_settings(EMAIL_URL=f"smtp+tls://alerts%40example.org:{PASSWORD}@mail.example.org:587")
    assert read["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (read["EMAIL_HOST"], read["EMAIL_PORT"], read["EMAIL_USE_TLS"]) == ("mail.example.org", 587, True)
    assert (read["EMAIL_HOST_USER"], read["EMAIL_HOST_PASSWORD"]) == ("alerts@example.org", PASSWORD)
    assert PASSWORD not in repr(read["EMAIL_HOST_PASSWORD"])
    refused = refusal(EMAIL_URL=f"smtp+tls://user:{PASSWORD}@mail.example.org:x87")
    assert PASSWORD not in refused


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    password=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", min_size=12),
    shape=st.sampled_from(
        [
            "smtp+tls://apikey:{password}",  # "@host:587" forgotten: the password sits where a port would
            "smtp+tls://apikey:{password}/",
            "{password}",
            "smtp+tls://apikey:{password}@mail.example.org:5x7",
            "smtp+tls://apikey:p/{password}@mail.example.org:587",
            "sendmail://apikey:{password}@mail.example.org",
        ]
    ),
)
def test_a_mail_url_s_password_is_never_shown_whatever_its_shape(password: str, shape: str) -> None:
    try:
        read = read_settings(EMAIL_URL=shape.format(password=password))
    except SettingError as refused:
        assert str(refused).startswith("EMAIL_URL") and password not in str(refused)
        return
    assert password not in repr(read["EMAIL_HOST_PASSWORD"]) + repr(read["EMAIL_HOST"])


def test_filemail_keeps_its_absolute_folder(tmp_path: Path) -> None:
    # django-environ reads filemail:///var/mail as the relative folder var/mail.
    assert read_settings(EMAIL_URL=f"filemail://{tmp_path}")["EMAIL_FILE_PATH"] == str(tmp_path)


def test_the_sender_may_have_a_display_name() -> None:
    assert read_settings(DEFAULT_FROM_EMAIL="alloysync <ops@example.org>")["DEFAULT_FROM_EMAIL"] == (
        "alloysync <ops@example.org>"
    )


def test_diffsettings_works_with_the_default_broker_and_no_password_anywhere() -> None:
    # A RedactedUrl without credentials once repr'd itself until RecursionError.
    result = run([sys.executable, "manage.py", "diffsettings", "--all"], {})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CELERY_BROKER_URL = 'filesystem://'" in result.stdout
    assert "JOB_ALERT_WEBHOOK_URL = None" in result.stdout


def test_diffsettings_masks_the_alert_webhook_url_and_the_mail_password(tmp_path: Path) -> None:
    token = "T0KEN" + "x9" * 12
    env = {
        "JOB_ALERT_WEBHOOK_URL": f"https://hooks.slack.com/services/T000/B000/{token}",
        "EMAIL_URL": f"smtp+tls://alerts:{PASSWORD}@mail.example.org:587",
    }
    result = run([sys.executable, "manage.py", "diffsettings", "--all"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "JOB_ALERT_WEBHOOK_URL = Secret('********')" in result.stdout
    assert token not in result.stdout and PASSWORD not in result.stdout


def test_alerts_go_nowhere_but_the_log_by_default() -> None:
    read = read_settings()
    assert read["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert (read["JOB_ALERT_EMAILS"], read["JOB_ALERT_WEBHOOK_URL"]) == ([], None)
    assert (read["SITE_URL"], read["JOB_AUTO_PAUSE_AFTER"], read["ALLOY_SYNC_ALERT_AFTER"]) == (
        "http://localhost:8000",
        0,
        3,
    )
    assert (read["JOB_RUN_RETENTION_DAYS"], read["SYNC_RUN_RETENTION_DAYS"]) == (90, 30)


def _env(assignment: str) -> dict[str, str]:
    name, _, value = assignment.partition("=")
    return {name: value}


@pytest.mark.parametrize(("assignment", "message"), FAULTS.items(), ids=list(FAULTS))
def test_each_bad_value_is_refused_with_one_line_naming_the_variable(assignment: str, message: str) -> None:
    assert refusal(**_env(assignment)) == message


def test_numbers_in_exponent_notation_mean_what_they_say() -> None:
    # django-environ's float reads 1e3 as 13.0 (it deletes the "e").
    read = read_settings(JOB_TIME_LIMIT="1e3", ALLOY_TIMEOUT="2.5E1", JOB_CATCHUP_WINDOW=" 90 ")
    assert (read["JOB_TIME_LIMIT"], read["ALLOY_TIMEOUT"], read["JOB_CATCHUP_WINDOW"]) == (1000.0, 25.0, 90.0)


def test_the_defaults_are_what_the_readme_says() -> None:
    read = read_settings()
    assert read["JOB_TIME_LIMIT"] == 3600
    assert read["JOB_LOST_AFTER"] == 120
    assert read["ALLOY_PAGE_SIZE"] == 100
    assert read["ALLOY_MAX_REMOVAL_FRACTION"] == 0.5
    assert read["DEBUG"] is True
    assert read["ALLOY_BASE_URL"] == "https://api.uk.alloyapp.io"
    assert read["ALLOY_API_KEY"] is None
    assert read["LOG_LEVEL"] == "INFO"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8123", "http://127.5.0.1", "http://localhost:8123/", "http://[::1]:8123"]
)
def test_plain_http_to_this_machine_is_allowed(url: str) -> None:
    assert read_settings(ALLOY_BASE_URL=url)["ALLOY_BASE_URL"] == url


def test_plain_http_elsewhere_needs_the_explicit_setting() -> None:
    read = read_settings(ALLOY_BASE_URL="http://alloy.internal:8080", ALLOY_ALLOW_PLAIN_HTTP="true")
    assert read["ALLOY_BASE_URL"] == "http://alloy.internal:8080"


@pytest.mark.parametrize(("word", "meaning"), [("true", True), ("Yes", True), ("on", True), ("1", True)])
@pytest.mark.parametrize("name", FLAGS)
def test_a_flag_reads_the_usual_words(name: str, word: str, meaning: bool) -> None:
    assert read_settings(**{name: word})[STORED_AS.get(name, name)] is meaning
    opposite = {"true": "false", "Yes": "No", "on": "OFF", "1": "0"}[word]
    assert (
        read_settings(**{name: opposite, "DJANGO_SECRET_KEY": "production-key-" * 4})[STORED_AS.get(name, name)]
        is not meaning
    )


# --- Generated values: a number is read as exactly that number, or refused -------------------------


NUMBER_SETTINGS = SECONDS + list(WHOLE_NUMBERS) + ["ALLOY_MAX_REMOVAL_FRACTION"]
# What an environment variable can hold: no NUL, no lone surrogates.
env_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
number_like = st.one_of(
    env_text,
    st.from_regex(r"\A[ +-]?[0-9]{0,4}[.,]?[0-9]{0,3}([eE][+-]?[0-9]{1,3})?[ a-z]?\Z"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NUMBER_SETTINGS), value=number_like)
@example(name="JOB_TIME_LIMIT", value="1e3")
@example(name="JOB_TIME_LIMIT", value="1.000,5")
@example(name="ALLOY_PAGE_SIZE", value="1_000")
@example(name="ALLOY_PAGE_SIZE", value="1e2")
@example(name="JOB_TIME_LIMIT", value="\u0661\u0662")  # Arabic-Indic digits: float() reads them as 12
def test_a_number_setting_is_exactly_float_of_its_text_or_refused_by_name(name: str, value: str) -> None:
    env = {name: value}
    if name == "JOB_LOST_AFTER":
        env["JOB_HEARTBEAT_INTERVAL"] = "1e-9"  # the lost-run bound is tested on its own
    try:
        read = read_settings(**env)
    except SettingError as refused:
        assert str(refused).startswith(f"{name} must be")
        assert "\n" not in str(refused)
        return
    number = read[STORED_AS.get(name, name)]
    assert number == float(value)  # never a different number
    assert math.isfinite(number)
    if name in WHOLE_NUMBERS:
        low, high = WHOLE_NUMBERS[name]
        assert isinstance(number, int) and low <= number <= high
    elif name == "ALLOY_MAX_REMOVAL_FRACTION":
        assert 0 <= number <= 1
    else:
        assert number > 0


@hypothesis_settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(FLAGS), value=st.one_of(env_text, st.sampled_from(["TRUE", " off ", "y", "n"])))
def test_a_flag_is_true_or_false_only_for_those_words(name: str, value: str) -> None:
    try:
        meaning = read_settings(**{name: value, "DJANGO_SECRET_KEY": "production-key-" * 4})[STORED_AS.get(name, name)]
    except SettingError as refused:
        assert str(refused) == f"{name} must be true or false, got {shown(value)}"
        return
    assert value.strip().lower() in ({"true", "yes", "on", "1"} if meaning else {"false", "no", "off", "0"})


@hypothesis_settings(max_examples=100, deadline=None)
@given(value=st.one_of(env_text, st.sampled_from(["Europe", "Europe/London", "localtime", "../zoneinfo/UTC", "EST"])))
def test_a_default_zone_is_one_python_can_load_or_refused_by_name(value: str) -> None:
    try:
        zone = read_settings(JOB_DEFAULT_TIMEZONE=value)["JOB_DEFAULT_TIMEZONE"]
    except SettingError as refused:
        assert str(refused).startswith("JOB_DEFAULT_TIMEZONE must be an IANA time zone such as Europe/London or UTC")
        return
    assert zone == value and ZoneInfo(zone).key == value


def test_a_long_value_is_cut_short_in_the_message() -> None:
    assert refusal(LOG_LEVEL="x" * 5000) == (
        f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {'x' * 100!r}... (5000 characters)"
    )


# --- Secrets -----------------------------------------------------------------------------------------

KEY_MESSAGE = re.compile(
    r"(ALLOY_API_KEY|ALLOY_API_KEY_FILE) must be one token: printable ASCII without spaces or line breaks, "
    r"at most 256 characters, but the value( in '[^']*')? is not \((it is \d+ characters long|it contains a line "
    r"break|it contains a non-ASCII character|it contains a space or a control character); the value is not shown\)"
)


def test_a_key_file_with_a_line_break_inside_is_refused_without_showing_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "alloy-key"
    key_file.write_text("abc-first-half\ndef-second-half\n")
    message = refusal(ALLOY_API_KEY_FILE=str(key_file))
    assert message == (
        "ALLOY_API_KEY_FILE must be one token: printable ASCII without spaces or line breaks, at most 256 "
        f"characters, but the value in {str(key_file)!r} is not (it contains a line break; the value is not shown)"
    )
    assert "first-half" not in message and "second-half" not in message


@pytest.mark.parametrize(
    "key", ["secret part\twith a tab", "secret-part-\u00e9t\u00e9", "secret-part-" + "x" * 300, "secret part two"]
)
def test_a_key_of_the_wrong_shape_is_refused_without_showing_it(key: str) -> None:
    message = refusal(ALLOY_API_KEY=key)
    assert KEY_MESSAGE.fullmatch(message)
    assert "secret" not in message


@hypothesis_settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=1, max_size=300), in_file=st.booleans())
def test_any_key_is_either_a_legal_header_value_or_refused_unseen(key: str, in_file: bool) -> None:
    env: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        if in_file:
            path = Path(folder) / "key"
            path.write_bytes(key.encode("utf-8", "surrogatepass"))
            env["ALLOY_API_KEY_FILE"] = str(path)
        elif "\x00" in key or any(0xD800 <= ord(character) <= 0xDFFF for character in key):
            return  # the environment cannot hold these; a file can
        else:
            env["ALLOY_API_KEY"] = key
        try:
            read = read_settings(**env)
        except SettingError as refused:
            assert KEY_MESSAGE.fullmatch(str(refused)) or str(refused).endswith(("which is empty", "not UTF-8 text"))
            return
    secret = read["ALLOY_API_KEY"]
    value = secret.reveal()
    assert value == (key.strip() if in_file else key)
    # h11 is what refused the newline key when it was sent: it accepts every key the settings accept.
    h11.Request(method="GET", target="/", headers=[("Host", "alloy"), ("Authorization", f"Bearer {value}")])
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('********')"


def test_both_the_key_and_its_file_set_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY)
    assert refusal(ALLOY_API_KEY=API_KEY, ALLOY_API_KEY_FILE=str(key_file)) == (
        "ALLOY_API_KEY and ALLOY_API_KEY_FILE are both set: set only one"
    )


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("\n")
    assert (
        refusal(ALLOY_API_KEY_FILE=str(key_file)) == f"ALLOY_API_KEY_FILE points at {str(key_file)!r}, which is empty"
    )


def test_the_key_is_a_secret_read_only_by_reveal(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(f"{API_KEY}\n")
    secret = read_settings(ALLOY_API_KEY_FILE=str(key_file))["ALLOY_API_KEY"]
    assert isinstance(secret, Secret)
    assert secret.reveal() == API_KEY
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('********')"
    assert secret == Secret(API_KEY) and secret != Secret("another")


PASSWORD = "Pw5ecret0nly4Tests"


def test_passwords_in_settings_are_masked_in_reprs_but_reach_their_drivers() -> None:
    read = read_settings(
        DATABASE_URL=f"postgres://alloysync:{PASSWORD}@db.internal:5432/alloysync",
        CELERY_BROKER_URL=f"redis://:{PASSWORD}@redis.internal:6379/0",
        DJANGO_SECRET_KEY=PASSWORD,
    )
    database = read["DATABASES"]["default"]
    for value in (read["DATABASES"], read["CELERY_BROKER_URL"], read["SECRET_KEY"]):
        assert PASSWORD not in repr(value)
    assert repr(read["CELERY_BROKER_URL"]) == "'redis://********@redis.internal:6379/0'"
    # Still the real text for Django's signing, psycopg and kombu.
    assert read["SECRET_KEY"] == PASSWORD and isinstance(read["SECRET_KEY"], RedactedText)
    assert f"password={PASSWORD}" in psycopg.conninfo.make_conninfo(password=database["PASSWORD"])
    assert str(read["CELERY_BROKER_URL"]) == f"redis://:{PASSWORD}@redis.internal:6379/0"


BAD_URL_SHAPES = [
    "{scheme}://user:{password}@host:port/name",
    "{scheme}://user:{password}@[::1/name",
    "ftp://user:{password}@host/name",
    "{scheme}//user:{password}@host/name",
    "{scheme}://user:{password}@host/name?x=1",
    "{scheme}://user:p@ss/{password}@host:99999/name",
    "{scheme}://user:pass/{password}@host/name",
]


@hypothesis_settings(max_examples=100, deadline=None)
@given(
    setting=st.sampled_from(
        [("DATABASE_URL", "postgres"), ("CELERY_BROKER_URL", "redis"), ("ALLOY_BASE_URL", "https")]
    ),
    shape=st.sampled_from(BAD_URL_SHAPES),
    password=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", min_size=12),
)
def test_a_url_with_a_password_never_shows_it(setting: tuple[str, str], shape: str, password: str) -> None:
    name, scheme = setting
    try:
        read = read_settings(**{name: shape.format(scheme=scheme, password=password)})
    except SettingError as refused:
        assert str(refused).startswith(name) and password not in str(refused)
        return
    assert name != "ALLOY_BASE_URL"  # a base URL with credentials is always refused
    shown = repr(read["DATABASES"] if name == "DATABASE_URL" else read["CELERY_BROKER_URL"])
    assert password not in shown


# --- Real processes ------------------------------------------------------------------------------------

PROCESS_FAULTS = [
    "JOB_TIME_LIMIT=abc",
    "ALLOY_PAGE_SIZE=0.5",
    "DJANGO_DEBUG=ture",
    "DATABASE_URL=nonsense",
    "ALLOY_BASE_URL=http://[::1",
    "ALLOY_BASE_URL=ftp://user:pass@host",
]


@pytest.mark.parametrize("assignment", PROCESS_FAULTS)
def test_manage_py_with_a_bad_setting_prints_one_line_and_exits_non_zero(assignment: str) -> None:
    result = run([sys.executable, "manage.py", "check"], _env(assignment))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"alloysync cannot start: {FAULTS[assignment]}"]


JOB_MODULE_FAULTS = {
    "raise RuntimeError('no licence server')": "RuntimeError: no licence server (at {path}:1)",
    "import gully_survey_sdk": "ModuleNotFoundError: No module named 'gully_survey_sdk' (at {path}:1)",
    "def build(:\n    pass": "SyntaxError: invalid syntax (at {path}:1)",
}
JOB_MODULE_EXITS = {"import sys\nsys.exit(3)": "called sys.exit(3) as it was imported (at {path}:2)"}


@pytest.mark.parametrize("command", [["manage.py", "check"], ["-m", "celery", "-A", "config", "worker"]])
@pytest.mark.parametrize("source", JOB_MODULE_FAULTS)
def test_a_job_module_that_fails_to_import_stops_the_process_with_one_line(
    tmp_path: Path, source: str, command: list[str]
) -> None:
    (tmp_path / "broken_jobs.py").write_text(source + "\n")
    env = {"JOB_MODULES": "jobs.examples,broken_jobs", "PYTHONPATH": str(tmp_path)}
    result = run([sys.executable, *command], env)
    assert result.returncode == 2
    why = JOB_MODULE_FAULTS[source].format(path=tmp_path / "broken_jobs.py")
    assert result.stderr.splitlines() == [
        f"alloysync cannot start: JOB_MODULES names 'broken_jobs', which failed to import: {why}"
    ]


@pytest.mark.parametrize("source", JOB_MODULE_EXITS)
def test_a_job_module_that_exits_as_it_is_imported_says_so(tmp_path: Path, source: str) -> None:
    (tmp_path / "broken_jobs.py").write_text(source + "\n")
    result = run([sys.executable, "manage.py", "check"], {"JOB_MODULES": "broken_jobs", "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    why = JOB_MODULE_EXITS[source].format(path=tmp_path / "broken_jobs.py")
    assert result.stderr.splitlines() == [f"alloysync cannot start: JOB_MODULES names 'broken_jobs', which {why}"]


@pytest.mark.parametrize("kind", ["worker", "beat"])
def test_celery_with_a_bad_setting_prints_one_line_and_exits_non_zero(kind: str) -> None:
    result = run([sys.executable, "-m", "celery", "-A", "config", kind], _env("JOB_TIME_LIMIT=abc"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"alloysync cannot start: {FAULTS['JOB_TIME_LIMIT=abc']}"]


def test_gunicorn_with_a_bad_setting_stops_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", "127.0.0.1:0"]
    command += ["--control-socket", str(tmp_path / "gunicorn.ctl")]
    result = run(command, _env("LOG_LEVEL=LOUD"))
    assert result.returncode == 4  # gunicorn's "App failed to load": it stops instead of respawning workers
    assert f"alloysync cannot start: {FAULTS['LOG_LEVEL=LOUD']}" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_diffsettings_shows_no_secret(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY)
    result = run(
        [sys.executable, "manage.py", "diffsettings", "--all"],
        {
            "ALLOY_API_KEY_FILE": str(key_file),
            "DJANGO_SECRET_KEY": "Dj4ngoSecretKeyForTheDiffsettingsTest",
            "DATABASE_URL": f"postgres://alloysync:{PASSWORD}@127.0.0.1:5432/alloysync",
            "CELERY_BROKER_URL": f"redis://:{PASSWORD}@127.0.0.1:6379/0",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "ALLOY_API_KEY = Secret('********')" in result.stdout
    assert "SECRET_KEY = '********'" in result.stdout
    for secret in (API_KEY, "Dj4ngoSecretKeyForTheDiffsettingsTest", PASSWORD):
        assert secret not in result.stdout


@pytest.mark.parametrize("variable", ["ALLOY_API_KEY_FILE", "DJANGO_SECRET_KEY_FILE"])
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_secret_file_that_is_a_device_is_refused_before_anything_is_read(variable: str, device: str) -> None:
    # /dev/zero was read whole: the process filled 24 GB of memory before the OOM killer stopped it.
    assert refusal(**{variable: device}) == f"{variable} points at {device!r}, which is not a regular file"


def test_a_secret_file_larger_than_any_key_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    with key_file.open("wb") as handle:
        handle.truncate(300 * 1024 * 1024)  # 300 MB, sparse: costs no disk
    assert refusal(ALLOY_API_KEY_FILE=str(key_file)) == (
        f"ALLOY_API_KEY_FILE points at {str(key_file)!r}, which holds more than 65,536 bytes"
    )


def test_a_secret_file_that_is_a_pipe_is_refused_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    pipe = tmp_path / "key"
    os.mkfifo(pipe)
    assert (
        refusal(ALLOY_API_KEY_FILE=str(pipe))
        == f"ALLOY_API_KEY_FILE points at {str(pipe)!r}, which is not a regular file"
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (" ", "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_DEBUG is false"),
        ("short", "DJANGO_SECRET_KEY must be at least 50 characters with at least 5 different ones"),
        ("ab" * 40, "DJANGO_SECRET_KEY must be at least 50 characters with at least 5 different ones"),
    ],
)
def test_a_production_secret_key_that_is_blank_or_weak_is_refused_unseen(key: str, message: str) -> None:
    refused = refusal(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=key)
    assert refused.startswith(message)
    assert key.strip() == "" or key not in refused


@pytest.mark.parametrize("url", ["https://api.example.org/?token=pw5ecret", "https://api.example.org/#pw5ecret"])
def test_a_base_url_with_a_query_or_fragment_is_refused_without_showing_them(url: str) -> None:
    refused = refusal(ALLOY_BASE_URL=url)
    assert refused.startswith("ALLOY_BASE_URL must be") and "without a query or fragment (not shown)" in refused
    assert "pw5ecret" not in refused and "'https://api.example.org/'?..." in refused


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "right/UTC", "posix/Europe/London"])
def test_a_default_zone_that_is_not_an_iana_name_is_refused(zone: str) -> None:
    assert refusal(JOB_DEFAULT_TIMEZONE=zone).startswith("JOB_DEFAULT_TIMEZONE must be an IANA time zone")


def test_the_webhook_secret_is_a_secret_from_the_environment_or_a_file(tmp_path):
    secret = "w" * 20 + "-webhook-secret"
    read = read_settings(ALLOY_WEBHOOK_SECRET=secret)
    assert isinstance(read["ALLOY_WEBHOOK_SECRET"], Secret) and read["ALLOY_WEBHOOK_SECRET"].reveal() == secret
    assert secret not in repr(read["ALLOY_WEBHOOK_SECRET"])
    secret_file = tmp_path / "webhook"
    secret_file.write_text(secret + "\n")
    assert read_settings(ALLOY_WEBHOOK_SECRET_FILE=str(secret_file))["ALLOY_WEBHOOK_SECRET"].reveal() == secret
    assert read_settings()["ALLOY_WEBHOOK_SECRET"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "ALLOY_WEBHOOK_SECRET must be at least 16 characters with at least 5 different ones, got 5"),
        (
            "a" * 20,
            "ALLOY_WEBHOOK_SECRET must be at least 16 characters with at least 5 different ones, got 20 "
            "characters, 1 different",
        ),
        ("has a space in it, long enough", "ALLOY_WEBHOOK_SECRET must be"),
        ("line\nbreak-and-long-enough", "ALLOY_WEBHOOK_SECRET must be"),
    ],
)
def test_a_webhook_secret_that_cannot_work_or_is_guessable_stops_start_up(value, expected):
    message = refusal(ALLOY_WEBHOOK_SECRET=value)
    assert message.startswith(expected)
    assert value not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "METRICS_TOKEN must be at least 16 characters with at least 5 different ones, got 5 characters"),
        (
            "ab" * 10,
            "METRICS_TOKEN must be at least 16 characters with at least 5 different ones, got 20 characters, "
            "2 different",
        ),
        ("0123456789abcdef ghij", "METRICS_TOKEN must be one token: printable ASCII without spaces"),
    ],
)
def test_a_metrics_token_that_cannot_work_or_is_guessable_stops_start_up(value, expected):
    message = refusal(METRICS_TOKEN=value)
    assert message.startswith(expected)
    assert value not in message


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1e3", "2000000", ""])
def test_an_api_rate_limit_that_is_not_a_whole_number_from_1_to_a_million_stops_start_up(value):
    assert refusal(API_RATE_LIMIT=value).startswith("API_RATE_LIMIT must be")


@pytest.mark.timeout(60)
def test_publishing_to_a_broker_host_that_does_not_answer_gives_up_in_seconds():
    # Web requests publish (the webhook, "run now"): a black-holed broker must not hold them for the
    # operating system's TCP timeout. 10.255.255.1 is a private address nothing here answers on.
    script = (
        "import time, django; django.setup(); from celery import current_app; t = time.monotonic()\n"
        "try:\n    current_app.send_task('alloysync.sync', retry=False)\n"
        "except Exception as exc:\n    print(type(exc).__name__, round(time.monotonic() - t, 1))\n"
    )
    env = clean_environment(DJANGO_SETTINGS_MODULE="config.settings", CELERY_BROKER_URL="redis://10.255.255.1:6379/0")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=50
    )
    name, seconds = done.stdout.split()
    assert name == "OperationalError" and float(seconds) < 15, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"ALLOY_CRON_ATTRIBUTE": "attributes_jobsCron", "ALLOY_STATUS_ATTRIBUTE": "attributes_jobsCron"},
            "ALLOY_STATUS_ATTRIBUTE must be an attribute of its own, but ALLOY_CRON_ATTRIBUTE names the same one",
        ),
        (
            {"ALLOY_JOB_FLAG_ATTRIBUTE": "attributes_isJob", "ALLOY_RUN_NOW_ATTRIBUTE": "attributes_isJob"},
            "ALLOY_RUN_NOW_ATTRIBUTE must be an attribute of its own, but ALLOY_JOB_FLAG_ATTRIBUTE names the same one",
        ),
        (
            {"ALLOY_STATUS_ATTRIBUTE": "attributes_state", "ALLOY_MESSAGE_ATTRIBUTE": "attributes_state"},
            "ALLOY_MESSAGE_ATTRIBUTE must be an attribute of its own, but ALLOY_STATUS_ATTRIBUTE names the same one",
        ),
        (
            {"ALLOY_LAST_RUN_ATTRIBUTE": "attributes_itemsTitle"},
            "ALLOY_LAST_RUN_ATTRIBUTE must be an attribute of its own, but ALLOY_TITLE_ATTRIBUTE names the same one",
        ),
    ],
)
def test_an_attribute_alloysync_writes_may_not_be_one_it_reads_or_another_it_writes(env, expected):
    assert refusal(**env).startswith(expected)


@pytest.mark.parametrize("secret", ["a" * 40, "abababababababababab"])
def test_a_webhook_secret_of_few_different_characters_stops_start_up(secret):
    message = refusal(ALLOY_WEBHOOK_SECRET=secret)
    assert "at least 16 characters with at least 5 different ones" in message and secret not in message


def test_the_webhook_secret_may_not_be_the_api_key():
    message = refusal(ALLOY_WEBHOOK_SECRET=API_KEY, ALLOY_API_KEY=API_KEY)
    assert message.startswith("ALLOY_WEBHOOK_SECRET must not be the same as ALLOY_API_KEY") and API_KEY not in message
