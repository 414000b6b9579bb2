"""``manage.py fake_alloy``: serve the bundled fake Alloy on localhost for the demo and by hand."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alloysync import fake_alloy


class Command(BaseCommand):
    help = "Serve a fake Alloy API on 127.0.0.1 from a JSON file of items (the bundled sample by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=fake_alloy.DEFAULT_PORT)
        parser.add_argument("--items", help="JSON file of items (default: the bundled sample)")
        parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
        parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of requests answered 5xx")

    def handle(
        self, *args: Any, port: int, items: str | None, latency: float, error_rate: float, **options: Any
    ) -> None:
        argv = ["--port", str(port), "--latency", str(latency), "--error-rate", str(error_rate)]
        if items:
            argv += ["--items", items]
        status = fake_alloy.main(argv, stdout=self.stdout)
        if status:
            raise CommandError(f"fake Alloy exited with status {status}")
