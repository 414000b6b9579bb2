"""``manage.py prune_history [--dry-run]``: delete run history past its retention now, as beat does daily."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.retention import BATCH_SIZE, MAX_BATCH_SIZE, PruneAlreadyRunning, PruneLeaseLost, history_prune


class Command(BaseCommand):
    help = (
        "Delete job runs older than JOB_RUN_RETENTION_DAYS and sync records older than SYNC_RUN_RETENTION_DAYS "
        "(each job keeps its latest 20 runs and its last failure), in small batches; say what was removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be removed; write nothing")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"rows deleted per transaction, 1 to {MAX_BATCH_SIZE:,} (default {BATCH_SIZE:,})",
        )

    def handle(self, *args: Any, dry_run: bool, batch_size: int, **options: Any) -> None:
        try:
            outcomes = history_prune(dry_run=dry_run, batch_size=batch_size)
        except (ValueError, PruneAlreadyRunning, PruneLeaseLost) as exc:
            raise CommandError(str(exc)) from None
        for outcome in outcomes:
            self.stdout.write(outcome.describe(dry_run=dry_run))
        if dry_run:
            self.stdout.write("dry run: nothing was deleted")
