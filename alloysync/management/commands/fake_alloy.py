"""``manage.py fake_alloy``: serve the bundled fake Alloy on localhost for the demo and by hand.

The same options, defaults and help as ``python -m alloysync.fake_alloy``: both come from
``alloysync.fake_alloy.cli``.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from alloysync.fake_alloy import cli


class Command(BaseCommand):
    help = cli.DESCRIPTION

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        # Exactly the options cli.add_arguments defined, whatever they are: one list of them, in cli.
        served = {name: value for name, value in options.items() if name in cli.SERVE_OPTIONS}
        cli.serve(**served, stdout=self.stdout)
