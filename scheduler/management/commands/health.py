"""``manage.py health [check ...]``: the /healthz checks from a shell or a container health check."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.health import UnknownHealthCheck, run_health_checks


class Command(BaseCommand):
    help = "Run the registered health checks (default all; e.g. database broker beat). Exit status 1 if unhealthy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("checks", nargs="*", help="names of the checks to run")

    def handle(self, *args: Any, checks: list[str], **options: Any) -> None:
        try:
            healthy, results = run_health_checks(checks)
        except UnknownHealthCheck as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(results, indent=2))
        if not healthy:
            raise CommandError("unhealthy")
