"""A job's definition (name, cron, zone, steps), validated once, whoever supplies it.

The admin and the Alloy mapping both build a ``JobSpec`` here, so a definition is accepted or refused
with the same messages wherever it comes from.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler import registry
from scheduler.cron import CronError, CrontabFields, parse_cron, quoted
from scheduler.models import MAX_TIME_LIMIT
from scheduler.plain_text import one_line
from scheduler.stored_values import (
    MAX_DEFINITION_JSON_BYTES,
    MAX_FUNCTION_NAME,
    MAX_STEPS,
    UnstorableValue,
    crontab_column_limits,
    storable_kwargs,
    text_problem,
)
from scheduler.timezones import iana_zone_known
from scheduler.types import JSONObject, JSONValue

_FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
NAME_MAX_LENGTH = 200
#: Job.cron's column.
CRON_MAX_LENGTH = 200


class JobSpecError(ValueError):
    """A definition that cannot be scheduled; ``errors`` holds one message per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class StepError:
    """What is wrong with one step: its 1-based number, the function if one was named, the problem."""

    number: int
    message: str
    function: str | None = None

    def __str__(self) -> str:
        where = f"step {self.number} ({self.function})" if self.function else f"step {self.number}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Step:
    function: str
    kwargs: Mapping[str, JSONValue] = field(default_factory=dict)

    def as_json(self) -> JSONObject:
        return {"function": self.function, "kwargs": dict(self.kwargs)}


@dataclass(frozen=True)
class JobSpec:
    name: str
    cron: str
    timezone: str
    steps: tuple[Step, ...]
    crontab: CrontabFields
    #: Seconds a run may take (``Job.time_limit``); None: ``JOB_TIME_LIMIT``.
    time_limit: int | None = None
    #: ``definition_digest`` of the above, and the size in bytes of the JSON it hashes: worked out once,
    #: when the spec is made (``dataclasses.replace`` included), as a sync compares every item by it.
    fingerprint: bytes = field(init=False, compare=False, repr=False)
    size: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        canonical = _canonical(self.name, self.cron, self.timezone, self.steps_json(), self.time_limit)
        object.__setattr__(self, "fingerprint", _fingerprint(canonical))
        object.__setattr__(self, "size", len(canonical))

    def steps_json(self) -> list[JSONValue]:
        return [step.as_json() for step in self.steps]

    def digest(self) -> bytes:
        return self.fingerprint


def definition_digest(
    name: str, cron: str, timezone: str, steps: list[JSONValue], time_limit: int | None = None
) -> bytes:
    """A fingerprint of what a job does and when (and for how long), to compare definitions without
    keeping them. A stored job's digest must be made from the same fields as ``JobSpec.fingerprint``."""
    return _fingerprint(_canonical(name, cron, timezone, steps, time_limit))


def _canonical(name: str, cron: str, timezone: str, steps: list[JSONValue], time_limit: int | None) -> bytes:
    """The definition as UTF-8 JSON, keys sorted: what the fingerprint hashes and the size limit measures.

    ``surrogatepass``: a row stored before values were checked (SQLite keeps unpaired surrogates) must
    still get a fingerprint, if only to differ from every valid definition.
    """
    definition: list[JSONValue] = [name, cron, timezone, steps]
    if time_limit is not None:  # so a job without its own limit keeps the digest it had before limits existed
        definition.append(time_limit)
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def _fingerprint(canonical: bytes) -> bytes:
    return hashlib.blake2b(canonical, digest_size=16).digest()


def job_spec_build(
    *, name: str, cron: str, timezone: str, steps: str | list[JSONValue], time_limit: object = None
) -> JobSpec:
    """Validate every part and return the spec, or raise JobSpecError listing every problem.

    ``time_limit``: seconds, a whole number from 1 to MAX_TIME_LIMIT, or None for ``JOB_TIME_LIMIT``.
    """
    errors: list[str] = []
    limit: int | None = None
    try:
        limit = time_limit_parse(time_limit)
    except ValueError as exc:
        errors.append(str(exc))
    name = (name or "").strip()
    name_error = _name_error(name)
    if name_error:
        errors.append(name_error)
    crontab = None
    if not isinstance(cron, str):
        errors.append(f"cron must be text, got {type(cron).__name__}")
    else:
        cron = cron.strip()
        try:
            crontab = _storable_crontab(cron)
        except CronError as exc:
            errors.append(str(exc))
    timezone_error = _timezone_error(timezone)
    if timezone_error:
        errors.append(timezone_error)
    parsed_steps: tuple[Step, ...] = ()
    try:
        parsed_steps = tuple(parse_steps(steps))
    except JobSpecError as exc:
        errors.extend(exc.errors)
    if errors or crontab is None:
        raise JobSpecError(errors)
    spec = JobSpec(name=name, cron=cron, timezone=timezone, steps=parsed_steps, crontab=crontab, time_limit=limit)
    if spec.size > MAX_DEFINITION_JSON_BYTES:
        size, limit = spec.size, MAX_DEFINITION_JSON_BYTES
        raise JobSpecError([f"the steps take {size:,} bytes as JSON, more than the {limit:,} a job may hold"])
    return spec


def time_limit_parse(value: object, *, what: str = "time limit") -> int | None:
    """A job's own time limit in whole seconds, or None when ``value`` is None (``JOB_TIME_LIMIT`` applies).

    Accepts an int, or a float holding a whole number (JSON numbers such as ``60.0``), from 1 to
    MAX_TIME_LIMIT. Raises ValueError naming ``what`` and the value for anything else: booleans,
    text, NaN, infinities, fractions, lists.
    """
    if value is None:
        return None
    whole: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        whole = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        whole = int(value)
    if whole is None or not 1 <= whole <= MAX_TIME_LIMIT:
        shown = quoted(value, 20) if isinstance(value, str) else _shown_number(value)
        raise ValueError(f"{what} must be a whole number of seconds from 1 to {MAX_TIME_LIMIT}, got {shown}")
    return whole


def _shown_number(value: object) -> str:
    if isinstance(value, list | dict):
        return f"a {type(value).__name__}"
    try:
        text = repr(value)
    except ValueError:  # an int past the 4,300 digits Python will print
        return "a number too long to show"
    return text if len(text) <= 40 else f"{text[:40]}..."


def _name_error(name: str) -> str | None:
    if not name:
        return "name is empty"
    if len(name) > NAME_MAX_LENGTH:
        return f"name is longer than {NAME_MAX_LENGTH} characters"
    problem = text_problem(name)
    return f"name {problem}" if problem else None


def _storable_crontab(cron: str) -> CrontabFields:
    """The crontab fields, or CronError if the expression or a field is longer than its column."""
    if len(cron) > CRON_MAX_LENGTH:
        raise CronError(f"cron {quoted(cron)} is longer than {CRON_MAX_LENGTH} characters")
    crontab = parse_cron(cron)
    for field_name, limit in crontab_column_limits().items():
        value: str = getattr(crontab, field_name)
        if len(value) > limit:
            what = field_name.replace("_", "-").replace("-of-year", "")
            raise CronError(
                f"cron {quoted(cron)}: the {what} field {quoted(value, 20)} is longer than the {limit} characters "
                "it can be stored in; write it shorter (a range such as 1-5, or a step such as */2)"
            )
    return crontab


def _timezone_error(timezone: str) -> str | None:
    if not isinstance(timezone, str) or not timezone.strip():
        return "time zone is empty"
    try:
        if iana_zone_known(timezone):
            ZoneInfo(timezone)
            return None
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
        pass
    return f"time zone {quoted(timezone)} is not a known IANA zone (e.g. 'Europe/London', 'UTC')"


def parse_steps(value: str | list[JSONValue]) -> list[Step]:
    """Steps from text (one ``function {json kwargs}`` a line) or a JSON list of objects.

    Every function must be registered and its kwargs must bind to its signature. Raises
    JobSpecError with one message per bad step, each naming the step number.
    """
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise JobSpecError([f"steps look like a JSON list but are not valid JSON: {exc}"]) from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; nesting past the stack
            raise JobSpecError([f"steps look like a JSON list but cannot be read: {_json_limit(exc)}"]) from None
    if isinstance(value, list):
        raw_steps = [_step_from_object(number, entry) for number, entry in enumerate(value, start=1)]
    elif isinstance(value, str):
        lines = [line.strip() for line in value.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        raw_steps = [_step_from_line(number, line) for number, line in enumerate(lines, start=1)]
    else:
        raise JobSpecError([f"steps must be text or a JSON list, got {type(value).__name__}"])
    if not raw_steps:
        raise JobSpecError(["steps are empty: at least one function is required"])
    if len(raw_steps) > MAX_STEPS:
        raise JobSpecError([f"there are {len(raw_steps):,} steps, more than the {MAX_STEPS} a job may have"])
    errors = [problem for problem in raw_steps if isinstance(problem, StepError)]
    steps = [step for step in raw_steps if isinstance(step, Step)]
    for number, step in enumerate(raw_steps, start=1):
        if isinstance(step, Step):
            error = _registry_error(step)
            if error:
                errors.append(StepError(number, error))
    if errors:
        raise JobSpecError([str(error) for error in sorted(errors, key=lambda error: error.number)])
    return steps


def _json_limit(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    if "digits" in str(exc):  # int parsing's limit (CVE-2020-10735), whose message suggests a Python call
        return "a number has more digits than the 4,300 that are read"
    return str(exc)


def _step_from_line(number: int, line: str) -> Step | StepError:
    function, _, kwargs_text = line.partition(" ")
    if len(function) > MAX_FUNCTION_NAME or not _FUNCTION_NAME.fullmatch(function):
        return StepError(number, f"{_shown(function)} is not a function name")
    kwargs_text = kwargs_text.strip()
    kwargs: JSONValue = {}
    if kwargs_text:
        try:
            kwargs = json.loads(kwargs_text)
        except json.JSONDecodeError as exc:
            return StepError(number, f"arguments are not valid JSON: {exc.msg} (column {exc.colno})", function)
        except (ValueError, RecursionError) as exc:
            return StepError(number, f"arguments cannot be read: {_json_limit(exc)}", function)
    return _make_step(number, function, kwargs)


def _step_from_object(number: int, entry: JSONValue) -> Step | StepError:
    if not isinstance(entry, dict) or "function" not in entry:
        return StepError(number, 'expected an object like {"function": "...", "kwargs": {...}}')
    unknown_keys = set(entry) - {"function", "kwargs"}
    if unknown_keys:
        return StepError(number, f"unknown keys {', '.join(sorted(unknown_keys))}")
    return _make_step(number, entry["function"], entry.get("kwargs", {}))


def _make_step(number: int, function: JSONValue, kwargs: JSONValue) -> Step | StepError:
    if not isinstance(function, str) or len(function) > MAX_FUNCTION_NAME or not _FUNCTION_NAME.fullmatch(function):
        return StepError(number, f"{_shown(function)} is not a function name")
    if not isinstance(kwargs, dict):
        return StepError(number, f"arguments must be a JSON object, got {type(kwargs).__name__}", function)
    try:
        return Step(function=function, kwargs=storable_kwargs(kwargs))
    except UnstorableValue as exc:
        return StepError(number, str(exc), function)


def _shown(value: JSONValue) -> str:
    """A value for a message, cut short: an error must not repeat a megabyte of input."""
    if isinstance(value, str):
        return quoted(value)
    return f"a {type(value).__name__}" if isinstance(value, list | dict) else repr(value)


def _registry_error(step: Step) -> str | None:
    try:
        registry.get_job_function(step.function).check_kwargs(step.kwargs)
    except (registry.UnknownJobFunction, registry.JobFunctionArgumentsError) as exc:
        return str(exc)
    return None


def steps_as_text(steps: list[JSONObject]) -> str:
    """The one-step-a-line form of stored steps, as operators type them in the admin."""
    lines: list[str] = []
    for step in steps:
        kwargs = step.get("kwargs") or {}
        # A stored step's function is a name (checked when saved): str() changes nothing but the type.
        function = str(step["function"])
        lines.append(f"{function} {json.dumps(kwargs)}" if kwargs else function)
    return "\n".join(lines)


def steps_with_kwargs(steps: list[JSONObject], step_kwargs: Sequence[object]) -> list[JSONObject]:
    """``steps`` (a job's stored steps) with each one's kwargs replaced by ``step_kwargs`` (one per step,
    in order): what "run now with arguments" runs, checked exactly as a job's steps are when saved.

    Raises JobSpecError with one message per bad step (``step 2 (examples.echo): ...``): not an object,
    values that cannot be stored as JSON, arguments that do not fit the function's signature, a function
    no longer registered; or a single message if the count is wrong or the whole is too big.
    """
    if len(step_kwargs) != len(steps):
        raise JobSpecError([f"the job has {len(steps)} step(s) but arguments were given for {len(step_kwargs)}"])
    errors: list[StepError] = []
    checked: list[JSONObject] = []
    for number, (step, kwargs) in enumerate(zip(steps, step_kwargs, strict=True), start=1):
        made = _make_step(number, step.get("function"), cast(JSONValue, kwargs))
        if isinstance(made, StepError):
            errors.append(made)
            continue
        error = _registry_error(made)
        if error:
            errors.append(StepError(number, error, made.function))
        checked.append(made.as_json())
    if errors:
        raise JobSpecError([str(error) for error in errors])
    size = len(json.dumps(checked, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > MAX_DEFINITION_JSON_BYTES:
        limit = MAX_DEFINITION_JSON_BYTES
        raise JobSpecError([f"the arguments take {size:,} bytes as JSON, more than the {limit:,} a job may hold"])
    return checked


def step_kwargs_parse(steps: list[JSONObject], texts: Sequence[str]) -> list[JSONObject]:
    """Each step's kwargs from JSON text (one text per step, in order; blank means ``{}``), checked by
    ``steps_with_kwargs``; returns the kwargs only. Raises JobSpecError with one message per bad step."""
    if len(texts) != len(steps):
        raise JobSpecError([f"the job has {len(steps)} step(s) but arguments were given for {len(texts)}"])
    parsed: list[object] = []
    errors: list[StepError] = []
    for number, (step, text) in enumerate(zip(steps, texts, strict=True), start=1):
        function = str(step.get("function"))
        try:
            parsed.append(json.loads(text) if text.strip() else {})
        except json.JSONDecodeError as exc:
            errors.append(StepError(number, f"arguments are not valid JSON: {exc.msg} (column {exc.colno})", function))
        except (ValueError, RecursionError) as exc:
            errors.append(StepError(number, f"arguments cannot be read: {_json_limit(exc)}", function))
    if errors:
        raise JobSpecError([str(error) for error in errors])
    return [cast(JSONObject, step["kwargs"]) for step in steps_with_kwargs(steps, parsed)]


def step_kwargs_texts(steps: list[JSONObject]) -> list[str]:
    """Each stored step's kwargs as indented JSON, to edit before a run with other arguments."""
    return [json.dumps(step.get("kwargs") or {}, indent=2, ensure_ascii=False, sort_keys=True) for step in steps]


def step_index(steps: Sequence[JSONObject], step: str) -> int:
    """The 0-based index of the stored step that ``step`` names: its 1-based number, or the function it
    calls when only one step calls it (``run_job --kwargs`` and the API's run arguments read keys alike).

    Raises ValueError with a message naming the steps there are.
    """
    # ASCII digits only: "²" and "٢" are digits to str.isdigit(), not step numbers anyone typed.
    if step.isascii() and step.isdigit():
        number = int(step)
        if not 1 <= number <= len(steps):
            raise ValueError(f"the job has no step {number}: it has {len(steps)} step(s)")
        return number - 1
    matches = [index for index, stored in enumerate(steps) if stored.get("function") == step]
    if len(matches) == 1:
        return matches[0]
    if matches:
        numbers = ", ".join(str(index + 1) for index in matches)
        raise ValueError(f"steps {numbers} all call {step}: give the step's number instead")
    names = ", ".join(f"{number} {stored.get('function')}" for number, stored in enumerate(steps, start=1))
    raise ValueError(f"no step calls {one_line(step, 80)!r}; the steps are: {names}")
