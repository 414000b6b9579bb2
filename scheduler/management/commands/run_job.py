"""``manage.py run_job <job> [--kwargs STEP=JSON ...]``: run a job now, synchronously, in this process."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.jobspec import JobSpecError, step_index, steps_with_kwargs
from scheduler.models import Job, JobRun, StepRun
from scheduler.plain_text import one_line
from scheduler.runner import job_run_execute
from scheduler.selectors import JobNotFound, job_find
from scheduler.types import JSONObject

#: Exit status for arguments the command cannot use (argparse's own), apart from 1: the run failed.
BAD_ARGUMENT = 2
#: Characters of a job's name printed (names come from Alloy items: any length, any character).
NAME_SHOWN = 80


class Command(BaseCommand):
    help = (
        "Run a job now, in this process, printing each step's outcome. Exit status 1 if it fails, "
        "2 if an argument is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", help="The job's id, its Alloy item id, or its exact name.")
        parser.add_argument(
            "--kwargs",
            action="append",
            default=[],
            metavar="STEP=JSON",
            help="Run step STEP (its number from 1, or its function's name if only one step calls it) with "
            "these keyword arguments, a JSON object, instead of its own for this run only. Repeatable.",
        )

    def handle(self, *args: object, job: str, kwargs: list[str], **options: object) -> None:
        if not job.strip():
            # A bad argument, like the others: every local job has a blank Alloy item id.
            raise CommandError(
                "no job given: give the job's id, its Alloy item id or its exact name", returncode=BAD_ARGUMENT
            )
        try:
            found = job_find(job)
        except JobNotFound as exc:
            raise CommandError(str(exc)) from None
        steps = _steps_to_run(found, kwargs)
        self.stdout.write(f"Running job {found.pk} ({one_line(found.name, NAME_SHOWN)}): {len(steps)} step(s)")
        run = job_run_execute(job=found, trigger=JobRun.Trigger.COMMAND, on_step=self._print_step, steps=steps)
        summary = f"Run {run.pk} {run.status}" + (f": {run.error}" if run.error else "")
        if run.status != JobRun.Status.SUCCEEDED:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))

    def _print_step(self, step: StepRun) -> None:
        line = f"  step {step.position} {step.function}: {step.status}"
        if step.status == StepRun.Status.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(f"{line} -> {step.result!r}"))
        elif step.status == StepRun.Status.FAILED:
            self.stdout.write(self.style.ERROR(line))
            self.stdout.write(step.error.rstrip())
        else:
            self.stdout.write(self.style.WARNING(line))


def _steps_to_run(job: Job, overrides: list[str]) -> list[JSONObject]:
    """The job's steps with the ``--kwargs`` given, checked as the job's own steps are; CommandError
    (exit status 2) naming every bad option or step otherwise."""
    stored: list[JSONObject] = job.steps
    step_kwargs: list[object] = [step.get("kwargs") or {} for step in stored]
    errors: list[str] = []
    given: dict[int, str] = {}  # step index -> the option that set it
    for option in overrides:
        shown = repr(option[:80])  # repr shows control and bidi characters as escapes
        try:
            index, value = _override(stored, option)
        except ValueError as exc:
            errors.append(f"--kwargs {shown}: {exc}")
            continue
        if index in given:
            # Keeping the last one silently would run with arguments nobody meant.
            errors.append(f"--kwargs {shown}: step {index + 1} is given twice (also by {given[index]})")
            continue
        given[index] = shown
        step_kwargs[index] = value
    if not errors:
        try:
            return steps_with_kwargs(stored, step_kwargs)
        except JobSpecError as exc:
            errors = exc.errors
    raise CommandError("cannot run with these arguments: " + "; ".join(errors), returncode=BAD_ARGUMENT)


def _override(steps: list[JSONObject], option: str) -> tuple[int, object]:
    """(step index, kwargs) from ``STEP=JSON``; ValueError saying what is wrong with it."""
    step, separator, text = option.partition("=")
    step = step.strip()
    if not separator or not step:
        raise ValueError("expected STEP=JSON, e.g. 1='{\"message\": \"hi\"}' or examples.echo='{...}'")
    index = step_index(steps, step)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError):  # a 5,000-digit number; nesting past the stack
        raise ValueError("the arguments cannot be read as JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"the arguments must be a JSON object, got {_json_kind(value)}")
    return index, value


def _json_kind(value: object) -> str:
    """What a decoded JSON value is, in JSON's own words: ``null``, ``true``, ``a number``, ``an array``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"
