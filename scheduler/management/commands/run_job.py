"""``manage.py run_job <job>``: run a job now, synchronously, in this process."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.models import JobRun, StepRun
from scheduler.runner import job_run_execute
from scheduler.selectors import JobNotFound, job_find


class Command(BaseCommand):
    help = "Run a job now, in this process, printing each step's outcome. Exit status 1 if it fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", help="The job's id, its Alloy item id, or its exact name.")

    def handle(self, *args: object, job: str, **options: object) -> None:
        try:
            found = job_find(job)
        except JobNotFound as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Running job {found.pk} ({found.name}): {len(found.steps)} step(s)")
        run = job_run_execute(job=found, trigger=JobRun.Trigger.COMMAND, on_step=self._print_step)
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
