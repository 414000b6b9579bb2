"""``manage.py fake_alloy``: serve the bundled fake Alloy on localhost for the demo and by hand.

The same options, defaults and help as ``python -m alloysync.fake_alloy``: both come from
``alloysync.fake_alloy.cli``.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from alloysync.fake_alloy import cli


class Command(BaseCommand):
    help = cli.DESCRIPTION

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(
        self,
        *args: Any,
        port: int,
        items: Path | str,
        api_key: str,
        latency: float,
        error_rate: float,
        **options: Any,
    ) -> None:
        cli.serve(port=port, items=items, api_key=api_key, latency=latency, error_rate=error_rate, stdout=self.stdout)
