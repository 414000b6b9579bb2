"""The fake Alloy's command line: ``python -m alloysync.fake_alloy`` and ``manage.py fake_alloy``.

Both entry points add their options with ``add_arguments`` and run ``serve``, so they accept the
same options with the same defaults and help.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO

from alloysync.fake_alloy.samples import DEMO_API_KEY, SAMPLE_DESIGN_CODE, SAMPLE_ITEMS_PATH, load_items
from alloysync.fake_alloy.server import FakeAlloyServer

DEFAULT_PORT = 8765
DESCRIPTION = "Serve a fake Alloy API on 127.0.0.1 from a JSON file of items (the bundled sample by default)."


class Output(Protocol):
    """Where ``serve`` writes: a text stream, or a management command's ``self.stdout``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> None: ...


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options ``serve`` takes: ``--port``, ``--items``, ``--api-key``, ``--latency``, ``--error-rate``."""
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument(
        "--items", type=Path, default=SAMPLE_ITEMS_PATH, help="JSON file of items (default: bundled sample)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("ALLOY_API_KEY") or DEMO_API_KEY,
        help="the Bearer key to accept (default: $ALLOY_API_KEY, else the demo key)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of requests answered with a 5xx")


def serve(
    *,
    port: int,
    items: str | os.PathLike[str],
    api_key: str,
    latency: float,
    error_rate: float,
    stdout: Output,
) -> None:
    """Serve the items in the JSON file ``items`` on 127.0.0.1:``port`` until interrupted (Ctrl-C).

    ``latency`` is seconds added to every answer, ``error_rate`` the fraction (0-1) answered with a
    5xx. Writes where it listens to ``stdout``, never the key given. ValueError when the file
    cannot be read as items or a fault setting is out of range.
    """
    server = FakeAlloyServer(load_items(items), api_key=api_key, port=port)
    server.faults.latency = latency
    server.faults.error_rate = error_rate
    with server:
        key_note = "the demo key " + DEMO_API_KEY if api_key == DEMO_API_KEY else "the key given"
        stdout.write(
            f"Fake Alloy serving {len(server.items)} items from {items} at {server.url}\n"
            f"Point alloysync at it: ALLOY_BASE_URL={server.url} (accepting {key_note}).\n"
            f"Sample design: ALLOY_JOB_DESIGN={SAMPLE_DESIGN_CODE}\n"
            "Press Ctrl-C to stop.\n"
        )
        stdout.flush()
        try:
            _wait_for_interrupt()
        except KeyboardInterrupt:
            stdout.write("Stopped.\n")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """``python -m alloysync.fake_alloy [options]``: serve until interrupted. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="fake_alloy", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    serve(**vars(args), stdout=stdout or sys.stdout)
    return 0


def _wait_for_interrupt() -> None:
    while True:
        time.sleep(3600)
