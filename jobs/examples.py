"""The three example functions: used by the demo and to smoke-test a deployment."""

import time

from scheduler.registry import job_function


@job_function("examples.echo")
def echo(message: str) -> str:
    """Return the message: proves a step ran and its result was recorded."""
    return message


@job_function("examples.sleep")
def sleep(seconds: float) -> float:
    """Sleep, then return how long: for overlap and time-limit checks."""
    time.sleep(float(seconds))
    return float(seconds)


@job_function("examples.fail")
def fail(message: str) -> None:
    """Raise RuntimeError(message): proves a failed step stops the run."""
    raise RuntimeError(message)
