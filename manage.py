#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        from django.core.management import execute_from_command_line
    except ModuleNotFoundError as exc:
        if exc.name != "django":
            raise
        # The usual cause: the README's `python manage.py ...` typed outside the virtualenv.
        made = (Path(__file__).resolve().parent / ".venv" / "bin" / "python").exists()
        sys.exit(
            f"Django is not installed for {sys.executable}: run `. .venv/bin/activate` or use "
            f".venv/bin/python manage.py ...{'' if made else ' (`make install` creates .venv)'}"
        )

    from config.env import exit_on_setting_error

    # A bad setting is one line naming it, not a traceback through Django's settings loader.
    with exit_on_setting_error():
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
