"""``manage.py sync_alloy``: pull jobs from Alloy now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from alloysync.client import AlloyError
from alloysync.models import SyncRun
from alloysync.plan import SyncPlan
from alloysync.sync import SyncAlreadyRunning, SyncConfigError, SyncOutcome, alloy_sync, alloy_sync_plan


class Command(BaseCommand):
    help = (
        "Read the items marked as jobs in Alloy (those edited since the previous sync, or every one when a "
        "full read is due or --full is given) and create, update or remove jobs to match."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--full",
            action="store_true",
            help="read every item, not only those edited since the previous sync (ALLOY_FULL_SYNC_INTERVAL)",
        )
        parser.add_argument("--dry-run", action="store_true", help="show what a full sync would change; write nothing")
        parser.add_argument(
            "--allow-mass-removal",
            action="store_true",
            help="apply a sync that removes more than ALLOY_MAX_REMOVAL_FRACTION of the live jobs",
        )

    def handle(self, *args: Any, full: bool, dry_run: bool, allow_mass_removal: bool, **options: Any) -> None:
        try:
            if dry_run:
                self._show_dry_run(alloy_sync_plan(on_page=self._progress))
                return
            outcome = alloy_sync(
                trigger=SyncRun.Trigger.COMMAND,
                mode=SyncRun.Mode.FULL if full else None,
                allow_mass_removal=allow_mass_removal,
                on_page=self._progress,
            )
        except (SyncConfigError, SyncAlreadyRunning, AlloyError) as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(
                f"the database failed during the sync; nothing was changed ({type(exc).__name__})"
            ) from None
        self._show_run(outcome)

    def _progress(self, pages: int, items: int) -> None:
        self.stderr.write(f"read page {pages} ({items} items so far)")

    def _show_run(self, outcome: SyncOutcome) -> None:
        run = outcome.run
        self.stdout.write(run.summary())
        self._show_invalid(outcome.plan)
        if run.status != SyncRun.Status.SUCCEEDED:
            raise CommandError(f"sync {run.pk} {run.status}: {run.message}")
        self.stdout.write(self.style.SUCCESS(f"sync {run.pk} ({run.mode}) succeeded: {run.requests} requests to Alloy"))

    def _show_dry_run(self, plan: SyncPlan) -> None:
        self.stdout.write(
            f"read {plan.items_read} items: would create {plan.created}, update {plan.updated}, leave "
            f"{plan.unchanged} unchanged, remove {len(plan.changes.remove)}; {len(plan.errors)} invalid"
        )
        for external_id, spec in plan.changes.create:
            self.stdout.write(f"  create {external_id} {spec.name!r}: {spec.cron} ({spec.timezone})")
        for job_id, spec in plan.changes.update:
            self.stdout.write(f"  update job {job_id} {spec.name!r}: {spec.cron} ({spec.timezone})")
        for job_id, message in plan.changes.invalid:
            self.stdout.write(f"  mark job {job_id} invalid, keeping its last valid definition: {message}")
        for job_id in plan.changes.remove:
            self.stdout.write(f"  remove job {job_id}")
        self._show_invalid(plan)
        self.stdout.write("dry run: nothing was written")

    def _show_invalid(self, plan: SyncPlan) -> None:
        for error in plan.errors:
            line = f"  invalid {error['item_id']} {error['title']!r}: {error['message']}"
            self.stdout.write(self.style.WARNING(_printable(line)))


def _printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped: Alloy's values must not drive the terminal."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
