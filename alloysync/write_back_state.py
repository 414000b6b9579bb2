"""What each Alloy item should show of its job: the status word, the message line, the last and next
run times, and the run-now attribute; and how a value as Alloy holds it compares with one we want.

Pure functions of values already loaded (``write_back`` loads them): no queries, no HTTP here. The
message is one line a person can act on, bounded, with anything that looks like a secret removed: a
step's error text is the job author's, and may quote a connection string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from scheduler.cron import CronError, next_fire
from scheduler.models import Job, JobRun

#: The most characters the message attribute is given (Alloy's text attributes hold more; a line is read).
MESSAGE_MAX_CHARS = 500
#: Shortest secret setting worth redacting by value (shorter ones would mangle ordinary words).
_MIN_SECRET_CHARS = 8

STATUS_INVALID = "invalid"
STATUS_PAUSED = "paused"
STATUS_FAILED = "failed"
STATUS_SUCCEEDED = "succeeded"
STATUS_SCHEDULED = "scheduled"


@dataclass(frozen=True)
class WriteBackCodes:
    """The attribute codes alloysync writes to (empty: that one is not written)."""

    status: str = ""
    message: str = ""
    last_run: str = ""
    next_run: str = ""
    run_now: str = ""

    @classmethod
    def from_settings(cls) -> WriteBackCodes:
        return cls(
            status=settings.ALLOY_STATUS_ATTRIBUTE,
            message=settings.ALLOY_MESSAGE_ATTRIBUTE,
            last_run=settings.ALLOY_LAST_RUN_ATTRIBUTE,
            next_run=settings.ALLOY_NEXT_RUN_ATTRIBUTE,
            run_now=settings.ALLOY_RUN_NOW_ATTRIBUTE,
        )

    @property
    def all(self) -> tuple[str, ...]:
        """Every configured code, each once, in a fixed order."""
        codes = (self.status, self.message, self.last_run, self.next_run, self.run_now)
        return tuple(dict.fromkeys(code for code in codes if code))

    @property
    def enabled(self) -> bool:
        return bool(self.all)

    def is_datetime(self, code: str) -> bool:
        return code in (self.last_run, self.next_run)


@dataclass(frozen=True)
class JobStatus:
    """What an item should show: ``status`` one of the five words (or "" for an item that is no job)."""

    status: str
    message: str
    last_run: datetime | None
    next_run: datetime | None


def item_status(
    *,
    job: Job | None,
    refusal: str,
    last_run: JobRun | None,
    now: datetime,
    run_now_refused: bool = False,
) -> JobStatus:
    """The state an item shows, by precedence: invalid, paused, the last run's outcome, scheduled.

    ``job`` is the item's job (removed ones included), ``refusal`` the item's own refusal when it has
    no job, ``last_run`` the job's latest succeeded or failed run. ``run_now_refused``: the run-now
    attribute was set on an item whose job cannot run now (none, or paused by an operator), which
    the message then says.
    """
    scheduled = job is not None and job.periodic_task is not None
    next_run = _next_run(job, now) if scheduled and job is not None and not job.is_paused else None
    started = last_run.started_at if last_run is not None else None
    zone = _zone_name(job)
    if job is not None and job.sync_error:
        tail = "the last valid definition keeps running" if scheduled else "not scheduled until the item is fixed"
        status, text = STATUS_INVALID, f"{job.sync_error}; {tail}"
    elif (job is None or not scheduled) and refusal:
        status, text = STATUS_INVALID, f"{refusal}; not scheduled until the item is fixed"
    elif job is None:
        status, text = "", "not a job: alloysync has no job for this item"
    elif not scheduled:
        status, text = _outcome_word(last_run), "not scheduled: the item is no longer a job"
    elif job.is_paused:
        note = f": {job.pause_note}" if job.pause_note.strip() else ""
        status, text = STATUS_PAUSED, f"paused by an operator{note}"
    elif last_run is not None:
        status, text = _outcome_word(last_run), _last_run_text(last_run, zone, next_run)
    else:
        status, text = STATUS_SCHEDULED, f"scheduled; next run {_local(next_run, zone)}"
    if run_now_refused and not scheduled:
        text = f"run now ignored: no job to run; {text}"
    elif run_now_refused and status == STATUS_PAUSED:
        text = f"run now ignored: {text}"
    return JobStatus(status, one_line(text), started, next_run)


def desired_values(codes: WriteBackCodes, state: JobStatus, *, run_now_pending: bool) -> dict[str, Any]:
    """Attribute code -> the value alloysync wants Alloy to hold. The run-now attribute is wanted false
    only while a request it made is pending; otherwise it is the user's, and left as it is."""
    wanted: dict[str, Any] = {}
    if codes.status:
        wanted[codes.status] = state.status
    if codes.message:
        wanted[codes.message] = state.message
    if codes.last_run:
        wanted[codes.last_run] = alloy_datetime(state.last_run)
    if codes.next_run:
        wanted[codes.next_run] = alloy_datetime(state.next_run)
    if codes.run_now and run_now_pending:
        wanted[codes.run_now] = False
    return wanted


def values_differing(codes: WriteBackCodes, wanted: Mapping[str, Any], held: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``wanted`` that ``held`` (as Alloy holds it, or as last written) does not match.
    A code missing from ``held`` always differs: it was never written or read."""
    return {
        code: value
        for code, value in wanted.items()
        if code not in held or not same_value(value, held[code], datetime_value=codes.is_datetime(code))
    }


def same_value(ours: Any, theirs: Any, *, datetime_value: bool = False) -> bool:
    """Whether Alloy's ``theirs`` shows ``ours``. Date-times compare as instants to the millisecond
    (Alloy may write them back in another form); an absent value, null and "" are all "nothing"."""
    if _nothing(ours) or _nothing(theirs):
        return _nothing(ours) and _nothing(theirs)
    if datetime_value:
        a, b = parse_alloy_datetime(ours), parse_alloy_datetime(theirs)
        if a is not None and b is not None:
            return abs((a - b).total_seconds()) < 0.001
    return type(ours) is type(theirs) and bool(ours == theirs)


def values_equal(codes: WriteBackCodes, observed: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """Whether an observation of every code matches what is stored for it."""
    return not values_differing(codes, {code: observed.get(code) for code in codes.all}, held)


def alloy_datetime(moment: datetime | None) -> str | None:
    """Alloy's date-time form, ``2023-03-23T00:00:00.000Z`` (UTC, milliseconds); None stays None."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_alloy_datetime(value: Any) -> datetime | None:
    """An aware datetime from Alloy's ISO text (any fraction, ``Z`` or an offset); None if it is not one."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip().replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def one_line(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    """``text`` as one line of at most ``limit`` characters, secrets removed: control characters and
    runs of white space become one space; a longer text is cut and ends with an ellipsis."""
    flat = " ".join(_CONTROL.sub(" ", redact_secrets(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def redact_secrets(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` without the deployment's secret settings, URL passwords, bearer tokens or
    ``password=``-style values."""
    for secret in secrets if secrets is not None else _secret_settings():
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "[redacted]")
    text = _URL_PASSWORD.sub(r"\1[redacted]@", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    return _KEY_VALUE.sub(lambda match: f"{match.group(1)}{match.group(2)}[redacted]", text)


# --- internals ------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
_BEARER = re.compile(r"\b(Bearer|Token|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"\b((?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key)\w*)(\s*[=:]\s*['\"]?)[^\s'\",;&]+",
    re.IGNORECASE,
)


def _secret_settings() -> list[str]:
    values = [getattr(settings, name, None) for name in ("ALLOY_API_KEY", "ALLOY_WEBHOOK_SECRET", "SECRET_KEY")]
    values.append(getattr(settings, "METRICS_TOKEN", None))
    values.append(getattr(settings, "EMAIL_HOST_PASSWORD", None))
    values.extend(database.get("PASSWORD") for database in settings.DATABASES.values())
    # Secret settings are wrapped (config.env_secrets.Secret, which alloysync may not import): reveal().
    revealed = [_revealed(value) for value in values]
    return [str.__str__(value) for value in revealed if isinstance(value, str) and value]


def _revealed(value: Any) -> Any:
    reveal = getattr(value, "reveal", None)
    return reveal() if callable(reveal) else value


def _nothing(value: Any) -> bool:
    return value is None or value == ""


def _outcome_word(run: JobRun | None) -> str:
    if run is None:
        return ""
    return STATUS_FAILED if run.status == JobRun.Status.FAILED else STATUS_SUCCEEDED


_STEP_FAILURE = re.compile(r"^step (\d+) \((.*?)\) failed: (.*)$", re.DOTALL)


def _last_run_text(run: JobRun, zone: str, next_run: datetime | None) -> str:
    when = f"at {_local(run.started_at, zone)} after {_duration(run)}"
    if run.status != JobRun.Status.FAILED:
        upcoming = f"; next run {_local(next_run, zone)}" if next_run else ""
        return f"last run succeeded {when}{upcoming}"
    error = (run.error or "no error recorded").strip()
    match = _STEP_FAILURE.match(error)
    if match:
        error = f"step {match.group(1)} ({match.group(2)}): {match.group(3)}"
    first_line = error.splitlines()[0] if error else ""
    return f"last run failed {when}: {first_line}"


def _duration(run: JobRun) -> str:
    seconds = run.duration.total_seconds() if run.duration is not None else 0.0
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def _next_run(job: Job, now: datetime) -> datetime | None:
    try:
        return next_fire(job.cron, job.timezone, now)
    except CronError:  # a stored cron was checked when saved; a zone database update could still refuse it
        return None


def _zone_name(job: Job | None) -> str:
    return job.timezone if job is not None and job.timezone else "UTC"


def _local(moment: datetime | None, zone: str) -> str:
    """``2024-05-01 02:30 Europe/London``: the job's own clock, as its cron reads."""
    if moment is None:
        return "not scheduled"
    try:
        local = moment.astimezone(ZoneInfo(zone))
    except (ValueError, KeyError, OSError):
        local, zone = moment.astimezone(UTC), "UTC"
    return f"{local:%Y-%m-%d %H:%M} {zone}"
