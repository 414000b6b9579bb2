"""``python -m alloysync.fake_alloy [--port N] [--items FILE] ...``: see ``cli.py``."""

import sys

from alloysync.fake_alloy.cli import main

if __name__ == "__main__":
    sys.exit(main())
