"""An Alloy item becomes a job spec, or a precise list of what is wrong with it.

The rules for cron, zone and steps are scheduler's (``job_spec_build``), so an item is judged exactly
as a job typed into the admin would be; this module adds only what is Alloy's: which attribute holds
what, and what an attribute's value may look like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alloysync.client import AlloyItem
from scheduler.cron import quoted
from scheduler.jobspec import JobSpec, JobSpecError, job_spec_build, time_limit_parse
from scheduler.stored_values import MAX_EXTERNAL_ID, text_problem


@dataclass(frozen=True)
class AttributeCodes:
    """Which item attributes hold a job's parts (the ALLOY_*_ATTRIBUTE settings)."""

    title: str
    cron: str
    steps: str
    timezone: str = ""
    time_limit: str = ""


class ItemInvalid(ValueError):
    """The item cannot become a job; ``errors`` holds one message per problem."""

    def __init__(self, item_id: str, title: str, errors: list[str]) -> None:
        self.item_id = item_id
        self.title = title
        self.errors = errors
        super().__init__("; ".join(errors))


def item_title(item: AlloyItem, codes: AttributeCodes) -> str:
    title = item.attribute(codes.title)
    return title.strip() if isinstance(title, str) and title.strip() else item.item_id


def job_spec_from_item(item: AlloyItem, codes: AttributeCodes, *, default_timezone: str) -> JobSpec:
    """The job an item describes; raises ItemInvalid naming every problem at once."""
    title = item_title(item, codes)
    errors: list[str] = []
    id_error = _item_id_error(item.item_id) or item.problem
    if id_error:
        raise ItemInvalid(item.item_id, title, [id_error])
    cron = _text_attribute(item, codes.cron, "cron", "ALLOY_CRON_ATTRIBUTE", errors)
    steps = _steps_attribute(item, codes.steps, errors)
    timezone = default_timezone
    if codes.timezone and item.attribute(codes.timezone) not in (None, ""):
        timezone = _text_attribute(item, codes.timezone, "time zone", "ALLOY_TIMEZONE_ATTRIBUTE", errors) or ""
    time_limit = _time_limit_attribute(item, codes.time_limit, errors)
    if errors:
        raise ItemInvalid(item.item_id, title, errors)
    try:
        return job_spec_build(name=title[:200], cron=cron or "", timezone=timezone, steps=steps, time_limit=time_limit)
    except JobSpecError as exc:
        raise ItemInvalid(item.item_id, title, exc.errors) from None


def _item_id_error(item_id: str) -> str | None:
    """Why an item id cannot be a job's external id. Alloy's are 24 hex digits; anything else is refused
    here, as one item's error, rather than by the database for the whole sync."""
    if len(item_id) > MAX_EXTERNAL_ID:
        return f"item id {quoted(item_id)} is longer than the {MAX_EXTERNAL_ID} characters a job can hold"
    problem = text_problem(item_id)
    if problem or not item_id.isprintable():
        return f"item id {item_id!r} {problem or 'holds unprintable characters'}"
    if not item_id.strip():
        return f"item id {item_id!r} is only spaces"
    return None


def _text_attribute(item: AlloyItem, code: str, what: str, setting: str, errors: list[str]) -> str | None:
    value = item.attribute(code)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(f"{what} attribute {code!r} ({setting}) has no value")
        return None
    if not isinstance(value, str):
        errors.append(f"{what} attribute {code!r} holds {_kind(value)}, not text")
        return None
    return value.strip()


def _time_limit_attribute(item: AlloyItem, code: str, errors: list[str]) -> int | None:
    """The item's own time limit in seconds; None (JOB_TIME_LIMIT) when not configured or empty."""
    value = item.attribute(code) if code else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return time_limit_parse(value, what="time limit (ALLOY_TIME_LIMIT_ATTRIBUTE)")
    except ValueError as exc:
        errors.append(str(exc))
        return None


def _steps_attribute(item: AlloyItem, code: str, errors: list[str]) -> str | list[Any]:
    value = item.attribute(code)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(f"steps attribute {code!r} (ALLOY_STEPS_ATTRIBUTE) has no value")
        return ""
    if not isinstance(value, str | list):
        errors.append(f"steps attribute {code!r} holds {_kind(value)}, not text or a list")
        return ""
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
