"""Hostile job names and errors cannot break an alert's shape nor inject into mail, Slack or Teams.

Names come from Alloy items and errors from job code: newlines, NUL, surrogates, right-to-left
overrides, megabytes, ``<!channel>``, ``@everyone``, ``[label](url)``. Whatever they hold, an alert
keeps its lines, its bounds and its link, and the webhook's text has no markup left for a chat to act on.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.alert_text import SUBJECT_MAX_CHARS, alert_field, webhook_text
from scheduler.alerts import run_alert_message
from scheduler.models import Alert, Job, JobRun

NASTY = [
    "<!channel>",
    "<!here|here>",
    "<@U024BE7LH>",
    "@everyone",
    "@Channel please",
    "@here",
    "<https://evil.example|click me>",
    "[click me](https://evil.example)",
    "[x] (y)",
    "&lt;!channel&gt;",
    "\u202eelif.exe",
    "\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
    "line one\nline two\r\nline three\u2028four\u2029five\x85six",
    "\x00\x1b[31mred\x1b[0m\x07",
    "\ud800\udfff",
    "<script>alert(1)</script>",
    "*bold* _it_ ~strike~ `code` ```block```",
    "# heading",
    "x" * 100_000,
]
HOSTILE = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(), max_size=200),
    st.lists(st.sampled_from(NASTY), max_size=5).map("".join),
    st.text(st.sampled_from("<>&@!|[]()\n\r\x00\u202e\u200bchanelvryo "), max_size=80),
)
# Left to right and right to left overrides, embeddings, isolates and marks.
BIDI = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
MENTION = re.compile(r"@(everyone|channel|here|all|room)\b", re.IGNORECASE)


def message(kind: str, name: str, error: str) -> tuple[str, str]:
    job = Job(pk=7, name=name, cron="30 2 * * *", timezone="Europe/London")  # no schedule: "removed"
    now = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    run = JobRun(pk=42, job=job, trigger="schedule", status="failed", error=error, started_at=now, finished_at=now)
    return run_alert_message(kind, job, run, threshold=3)


def assert_plain_and_bounded(subject: str, text: str) -> None:
    lines = text.split("\n")
    assert len(lines) == 6, lines  # what, run, error, next run, "open ...", the link
    assert lines[-1].endswith("/admin/scheduler/jobrun/42/change/")
    assert len(text) <= 1500 and len(subject) <= SUBJECT_MAX_CHARS
    for part in [subject, *lines]:
        for ch in part:
            assert unicodedata.category(ch) not in {"Cc", "Zl", "Zp", "Cs", "Co", "Cn"}, repr(ch)
            assert unicodedata.category(ch) != "Cf" or ch == "\u200b", repr(ch)
    assert not BIDI.search(text + subject)
    assert not MENTION.search(text) and not MENTION.search(subject)
    assert "](" not in text
    posted = webhook_text(text)
    assert "<" not in posted and ">" not in posted  # nothing Slack reads as a link or a mention
    assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", posted, re.S)  # every & is one of ours
    subject.encode("utf-8")
    text.encode("utf-8")  # no lone surrogate: mail and JSON can carry it


@settings(max_examples=300, deadline=None)
@given(name=HOSTILE, error=HOSTILE, kind=st.sampled_from(["failing", "auto_paused"]))
def test_hostile_names_and_errors_keep_the_alert_plain_bounded_and_inert(name, error, kind):
    subject, text = message(kind, name, error)
    assert_plain_and_bounded(subject, text)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=HOSTILE, error=HOSTILE)
def test_an_alert_from_hostile_values_is_stored_as_it_was_made(name, error):
    subject, text = message("failing", name, error)
    alert = Alert.objects.create(kind="failing", subject=subject, text=text)
    alert.refresh_from_db()
    assert (alert.subject, alert.text) == (subject, text)  # PostgreSQL refuses NUL: none is left


def test_a_megabyte_name_and_error_are_cut_with_a_mark():
    subject, text = message("failing", "n" * 1_000_000, "e" * 1_000_000)
    assert subject == f'[alloysync] FAILING: "{"n" * 119}…" (job 7)'
    assert text.split("\n")[2] == f"Error: {'e' * 399}…"
    assert len(text) < 1500


def test_slack_markup_is_shown_as_written_not_acted_on():
    _, text = message("failing", "<!channel> @everyone", "step 1 (x) failed: <https://evil|click>")
    posted = webhook_text(text)
    assert "&lt;!channel&gt; @\u200beveryone" in posted
    assert "&lt;https://evil|click&gt;" in posted


def test_alert_field_keeps_ordinary_text_as_it_is():
    assert alert_field("Gully report: Müller & Søn — 2 ≥ 1 ✓ 日本", 200) == "Gully report: Müller & Søn — 2 ≥ 1 ✓ 日本"
    assert alert_field("ops@example.org", 50) == "ops@example.org"  # an address is not a mention
    assert alert_field("a  b\tc\nd", 50) == "a b c d"
