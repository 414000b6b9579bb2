"""Job functions that misbehave the ways job code can: exit, interrupt, fork, return or raise values
the database refuses. Registered at import, so tests import this module and real workers load it
with ``JOB_MODULES=jobs.examples,tests.scheduler.hostile_jobs``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from scheduler.registry import job_function


class Meltdown(BaseException):
    """A BaseException of job code's own, like those some libraries define."""


class UnprintableError(RuntimeError):
    """An exception whose message cannot be read: its ``__str__`` raises."""

    def __init__(self, raises: type[BaseException]) -> None:
        super().__init__()
        self.raises = raises

    def __str__(self) -> str:
        raise self.raises("no message for you")


class BadRepr:
    """A result whose ``repr`` raises."""

    def __repr__(self) -> str:
        raise ValueError("no repr for you")


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _self_containing() -> list[Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return loop


#: Results the database refuses or Python's json cannot write, by name (step kwargs are JSON).
RESULTS: dict[str, Any] = {
    "nul": "a\x00b",
    "surrogate": "\ud800 and \udfff",
    "nan": float("nan"),
    "infinities": [float("inf"), float("-inf")],
    "set": {1, 2},
    "object": Opaque(),
    "bad repr": BadRepr(),
    "non-text keys": {1: "one", None: "none", (1, 2): "pair", 2.5: "float", False: "no"},
    "nul key": {"a\x00": 1},
    "nested 1000": nested_lists(1000),
    "self-containing": _self_containing(),
    "huge int": 10**5000,
    "huge text": "x" * (20 * 1024 * 1024),
    "bytes": b"\x00\xff",
}

#: What a test sets for ``hostile.current``: ("return", value) or ("raise", exception).
current: tuple[str, Any] = ("return", None)


@job_function("hostile.exit")
def exit_with(code: int) -> None:
    sys.exit(code)


@job_function("hostile.interrupt")
def interrupt() -> None:
    raise KeyboardInterrupt


@job_function("hostile.raise_base")
def raise_base(kind: str) -> None:
    raise {"meltdown": Meltdown("core too hot"), "generator exit": GeneratorExit()}[kind]


@job_function("hostile.celery_terminate")
def celery_terminate() -> None:
    from celery.exceptions import WorkerTerminate  # what a solo-pool worker raises on a hard shutdown

    raise WorkerTerminate(1)


@job_function("hostile.returns")
def returns(kind: str) -> object:
    return RESULTS[kind]


@job_function("hostile.long_error")
def long_error(chars: int) -> None:
    raise RuntimeError("start " + "x" * chars + " end")


@job_function("hostile.nul_error")
def nul_error() -> None:
    raise RuntimeError("bad byte \x00 and \ud800 here")


@job_function("hostile.unprintable_error")
def unprintable_error(raises: str) -> None:
    raise UnprintableError({"value": ValueError, "exit": SystemExit}[raises])


@job_function("hostile.fork")
def fork(child: str) -> dict[str, int]:
    """Fork; the child returns, raises or exits as ``child`` says, the parent waits and reports its status."""
    pid = os.fork()
    if pid == 0:
        if child == "raise":
            raise RuntimeError("raised in the child")
        if child == "exit":
            sys.exit(7)
        return {"i am": "the child"}  # type: ignore[dict-item]
    _, status = os.waitpid(pid, 0)
    return {"child exit status": os.waitstatus_to_exitcode(status)}


@job_function("hostile.current")
def current_behaviour() -> object:
    action, value = current
    if action == "raise":
        raise value
    return value
