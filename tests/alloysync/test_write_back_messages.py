"""The message and values written to Alloy, for any input: one line, bounded, no secret, times that compare."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.test import override_settings
from django_celery_beat.models import PeriodicTask
from hypothesis import given, settings
from hypothesis import strategies as st

from alloysync.write_back_state import (
    MESSAGE_MAX_CHARS,
    WriteBackCodes,
    alloy_datetime,
    item_status,
    one_line,
    parse_alloy_datetime,
    same_value,
    values_differing,
)
from config.env_secrets import Secret
from scheduler.models import Job, JobRun

API_KEY = "0b7c5d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
WEBHOOK_SECRET = "webhook-secret-5f0e9d8c7b6a"
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def scheduled_job(**fields: object) -> Job:
    job = Job(name="j", source="alloy", external_id="a" * 24, cron="30 2 * * *", timezone="Europe/London")
    job.periodic_task = PeriodicTask(name="t", task="scheduler.run_job", enabled=True)
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def failed_run(error: str) -> JobRun:
    return JobRun(status="failed", started_at=NOW - timedelta(hours=1), finished_at=NOW, error=error)


def assert_one_safe_line(text: str) -> None:
    assert len(text) <= MESSAGE_MAX_CHARS
    assert text == text.strip() and not any(ch in text for ch in "\n\r\t\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    assert API_KEY not in text and WEBHOOK_SECRET not in text


error_texts = st.text(min_size=0, max_size=3000)


@override_settings(ALLOY_API_KEY=Secret(API_KEY), ALLOY_WEBHOOK_SECRET=Secret(WEBHOOK_SECRET))
@settings(max_examples=200, deadline=None)
@given(before=error_texts, after=error_texts, secret=st.sampled_from([API_KEY, WEBHOOK_SECRET, ""]))
def test_any_error_becomes_one_bounded_line_without_a_secret(before: str, after: str, secret: str) -> None:
    error = f"step 2 (reports.email) failed: {before}{secret}{after}"
    status = item_status(job=scheduled_job(), refusal="", last_run=failed_run(error), now=NOW)
    assert status.status == "failed"
    assert status.message.startswith("last run failed at 2026-07-01 12:00 Europe/London after 1 h 0 min: step 2")
    assert_one_safe_line(status.message)


@override_settings(ALLOY_API_KEY=Secret(API_KEY), ALLOY_WEBHOOK_SECRET=Secret(WEBHOOK_SECRET))
@settings(max_examples=100, deadline=None)
@given(refusal=error_texts, note=error_texts)
def test_any_refusal_or_pause_note_becomes_one_bounded_line(refusal: str, note: str) -> None:
    for status in (
        item_status(job=None, refusal=refusal + API_KEY, last_run=None, now=NOW),
        item_status(job=scheduled_job(sync_error=refusal or "x"), refusal="", last_run=None, now=NOW),
        item_status(job=scheduled_job(pause_note=note + WEBHOOK_SECRET), refusal="", last_run=None, now=NOW),
    ):
        assert_one_safe_line(status.message)


def test_credentials_in_urls_tokens_and_key_values_are_removed() -> None:
    text = one_line(
        "could not connect to postgres://reports:hunter2hunter2@db:5432/x; "
        "header Authorization: Bearer abcdefghijklmnop; password=s3cr3t-value api_key: zzzzzzzzzz"
    )
    for secret in ("hunter2hunter2", "abcdefghijklmnop", "s3cr3t-value", "zzzzzzzzzz"):
        assert secret not in text
    assert "postgres://reports:[redacted]@db:5432/x" in text


def test_the_first_line_of_the_error_and_the_step_are_kept() -> None:
    run = failed_run("step 3 (reports.email) failed: SMTPError: refused\nTraceback (most recent call last):")
    message = item_status(job=scheduled_job(), refusal="", last_run=run, now=NOW).message
    expected = "last run failed at 2026-07-01 12:00 Europe/London after 1 h 0 min: step 3 (reports.email): "
    assert message == expected + "SMTPError: refused"


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))  # noqa: DTZ001  (hypothesis bounds are naive)
def test_alloy_date_times_round_trip_to_the_millisecond(moment: datetime) -> None:
    text = alloy_datetime(moment)
    assert text is not None and len(text) == 24 and text.endswith("Z")
    parsed = parse_alloy_datetime(text)
    assert parsed is not None and abs((parsed - moment).total_seconds()) < 0.001
    # Alloy may hand it back with seven fractional digits or an offset: still the same value.
    assert same_value(text, parsed.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z", datetime_value=True)
    assert same_value(text, parsed.isoformat(), datetime_value=True)


def test_nothing_null_and_empty_are_the_same_and_types_matter() -> None:
    codes = WriteBackCodes(status="s", run_now="r", next_run="n")
    assert values_differing(codes, {"s": "", "n": None}, {"s": None, "n": ""}) == {}
    assert values_differing(codes, {"r": False}, {"r": None}) == {"r": False}
    assert values_differing(codes, {"r": False}, {"r": 0}) == {"r": False}
    assert values_differing(codes, {"s": "paused"}, {}) == {"s": "paused"}
