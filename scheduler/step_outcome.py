"""One step's call, and whatever it did made into an outcome the database will store.

A step is job code: it may return anything, raise anything (``sys.exit``, ``KeyboardInterrupt``, an
exception whose ``__str__`` raises, a 20 MB message) or fork. Whatever it does, the outcome here is
plain, storable and bounded, so recording it cannot fail on the values it records.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from scheduler import registry
from scheduler.run_guards import JobTimeLimitExceeded, call_as_owner, time_limit_alarm
from scheduler.storable import storable_json, storable_text
from scheduler.types import JSONObject, JSONValue

#: A failed step's stored traceback is cut (start and end kept, a marker between) past this many
#: characters: 64 KiB, the same figure as JOB_RESULT_MAX_BYTES's default, but fixed.
ERROR_MAX_CHARS = 64 * 1024
#: The one-line account of a failure (the run's ``error``, log lines) is cut past this many.
SUMMARY_MAX_CHARS = 1000


@dataclass(frozen=True)
class StepOutcome:
    """What a step did, ready to store. ``stop`` is a KeyboardInterrupt or SystemExit the step raised:
    the process was told to stop, so the runner raises it again once the run is recorded."""

    succeeded: bool
    result: JSONValue = None
    error: str = ""  # the traceback, or the reason if there is none
    summary: str = ""  # one line, for the run's error
    stop: BaseException | None = None


def step_call(function: str, kwargs: JSONObject, *, owner_pid: int, deadline: float, limit: float) -> StepOutcome:
    """Call the registered ``function`` with ``kwargs`` before ``deadline`` (``time.monotonic()``).

    ``limit`` is the run's time limit in seconds, for the message. Never raises what the step raises;
    a BaseException arriving from outside the step (a signal while this formats) still propagates.
    """
    try:
        job_function = registry.get_job_function(function)
        with time_limit_alarm(deadline - time.monotonic(), limit):
            value = call_as_owner(owner_pid, job_function.func, kwargs)
            # Inside the time limit: a result too big to walk in time is a step too slow.
            result = storable_json(value, max_bytes=settings.JOB_RESULT_MAX_BYTES)
    except JobTimeLimitExceeded:
        return failed_outcome(f"time limit of {limit:g} s exceeded")
    except registry.UnknownJobFunction as exc:
        return failed_outcome(str(exc))
    except BaseException as exc:  # noqa: BLE001 - whatever job code raises fails the step, with its traceback kept
        return exception_outcome(exc)
    return StepOutcome(succeeded=True, result=result)


def failed_outcome(reason: str) -> StepOutcome:
    """A failure with no traceback worth keeping: the reason is both the error and the summary."""
    summary = storable_text(reason, SUMMARY_MAX_CHARS)
    return StepOutcome(succeeded=False, error=summary, summary=summary)


def exception_outcome(exc: BaseException) -> StepOutcome:
    summary = exception_summary(exc)
    stop = exc if isinstance(exc, KeyboardInterrupt | SystemExit) else None
    return StepOutcome(succeeded=False, error=exception_traceback(exc, summary), summary=summary, stop=stop)


def exception_summary(exc: BaseException) -> str:
    """One line naming ``exc``: ``RuntimeError: first line of its message``, ``called sys.exit(3)``."""
    if type(exc) is SystemExit:  # not Celery's WorkerShutdown and kin, which the worker raises
        return storable_text(f"called sys.exit({_safe_text(repr, exc.code)})", SUMMARY_MAX_CHARS)
    message = _safe_text(str, exc).strip()
    first_line = message.partition("\n")[0]
    return storable_text(f"{_type_name(exc)}: {first_line}" if first_line else _type_name(exc), SUMMARY_MAX_CHARS)


def exception_traceback(exc: BaseException, summary: str) -> str:
    """``exc``'s traceback as Python prints it, cut past ERROR_MAX_CHARS; ``summary`` if it cannot be formatted."""
    try:
        text = "".join(traceback.format_exception(exc))
    except BaseException:  # noqa: BLE001 - e.g. a __str__ raising SystemExit: the summary still says what happened
        text = f"{summary}\n(the traceback could not be formatted)"
    return storable_text(text, ERROR_MAX_CHARS)


def _safe_text(convert: Callable[[object], object], value: object) -> str:
    try:
        text = convert(value)
    except BaseException as error:  # noqa: BLE001 - str() and repr() run job code, which may raise anything
        return f"<unreadable: {getattr(convert, '__name__', 'str')}() raised {_type_name(error)}>"
    return str.__str__(text) if isinstance(text, str) else "<not text>"


def _type_name(value: object) -> str:
    """The exception's class as tracebacks name it: ``RuntimeError``, ``jobs.reports.ReportError``."""
    cls = type(value)
    module = cls.__module__
    if not isinstance(module, str) or module in {"builtins", "__main__"}:
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"
