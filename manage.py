#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.env import exit_on_setting_error

    # A bad setting is one line naming it, not a traceback through Django's settings loader.
    with exit_on_setting_error():
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
