"""The fake Alloy's command line: ``python -m alloysync.fake_alloy`` and ``manage.py fake_alloy``.

Both entry points add their options with ``add_arguments`` and run ``serve``, so they accept the
same options with the same defaults and help.

The webhook secret is read from ``--webhook-secret-file`` or ``$ALLOY_WEBHOOK_SECRET``, never taken
on the command line (where ``ps`` shows it) and never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO
from urllib.parse import urlsplit

from alloysync.fake_alloy.samples import DEMO_API_KEY, SAMPLE_DESIGN_CODE, SAMPLE_ITEMS_PATH, load_items
from alloysync.fake_alloy.server import FakeAlloyServer
from alloysync.fake_alloy.workflow import WORKFLOW_BODIES, Workflow

DEFAULT_PORT = 8765
DESCRIPTION = "Serve a fake Alloy API on 127.0.0.1 from a JSON file of items (the bundled sample by default)."
WEBHOOK_SECRET_ENV = "ALLOY_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
# A secret is a line of text: a bigger file is the wrong file, not a secret to read whole.
MAX_SECRET_BYTES = 4096


class Output(Protocol):
    """Where ``serve`` writes: a text stream, or a management command's ``self.stdout``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> None: ...


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options ``serve`` takes: ``--port``, ``--items``, ``--api-key``, ``--latency``,
    ``--error-rate``, ``--rate-limit``, ``--item-log`` and the ``--webhook-*`` workflow options."""
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
    parser.add_argument(
        "--rate-limit",
        type=_positive_int,
        default=None,
        help="requests allowed per endpoint per minute, then 429 (default: not enforced)",
    )
    parser.add_argument(
        "--item-log", action="store_true", help="serve GET /api/item-log/design/{code} (default: 404, as if disabled)"
    )
    parser.add_argument(
        "--webhook-url", default=None, help="URL a workflow POSTs to on create, edit and delete of the design's items"
    )
    parser.add_argument(
        "--webhook-secret-file",
        type=Path,
        default=None,
        help=f"file holding the workflow's Bearer secret (default: ${WEBHOOK_SECRET_ENV})",
    )
    parser.add_argument(
        "--webhook-body",
        choices=sorted(WORKFLOW_BODIES),
        default="itemId",
        help="how the workflow names the item: body itemId, itemIds or item, or ?itemId= (query) (default itemId)",
    )
    parser.add_argument(
        "--webhook-design", default=SAMPLE_DESIGN_CODE, help="the design the workflow listens on (default: the sample)"
    )


# The keyword arguments of ``serve`` that ``add_arguments`` defines, for callers that pass parsed options on.
SERVE_OPTIONS = frozenset(
    {
        "port",
        "items",
        "api_key",
        "latency",
        "error_rate",
        "rate_limit",
        "item_log",
        "webhook_url",
        "webhook_secret_file",
        "webhook_body",
        "webhook_design",
    }
)


def serve(
    *,
    port: int,
    items: str | os.PathLike[str],
    api_key: str,
    latency: float,
    error_rate: float,
    stdout: Output,
    rate_limit: int | None = None,
    item_log: bool = False,
    webhook_url: str | None = None,
    webhook_secret_file: str | os.PathLike[str] | None = None,
    webhook_body: str = "itemId",
    webhook_design: str = SAMPLE_DESIGN_CODE,
) -> None:
    """Serve the items in the JSON file ``items`` on 127.0.0.1:``port`` until interrupted (Ctrl-C).

    ``latency`` is seconds added to every answer, ``error_rate`` the fraction (0-1) answered with a
    5xx, ``rate_limit`` requests per endpoint per minute before 429 (None: not enforced).
    ``item_log`` serves the item log. ``webhook_url`` runs a workflow on ``webhook_design`` with the
    secret from ``webhook_secret_file`` or ``$ALLOY_WEBHOOK_SECRET``. Writes where it listens to
    ``stdout``, never the key or secret given. ValueError when the file cannot be read as items, a
    setting is out of range, or a webhook has no secret.
    """
    workflow = None
    if webhook_url:
        secret = _webhook_secret(webhook_secret_file)
        workflow = Workflow(url=webhook_url, secret=secret, design_code=webhook_design, body=webhook_body)
    server = FakeAlloyServer(
        load_items(items), api_key=api_key, port=port, rate_limit=rate_limit, item_log=item_log, workflow=workflow
    )
    server.faults.latency = latency
    server.faults.error_rate = error_rate
    with server:
        key_note = "the demo key " + DEMO_API_KEY if api_key == DEMO_API_KEY else "the key given"
        stdout.write(
            f"Fake Alloy serving {len(server.items)} items from {items} at {server.url}\n"
            f"Point alloysync at it: ALLOY_BASE_URL={server.url} (accepting {key_note}).\n"
            f"Sample design: ALLOY_JOB_DESIGN={SAMPLE_DESIGN_CODE}\n"
            + "".join(f"{line}\n" for line in _extras(server))
            + "Press Ctrl-C to stop.\n"
        )
        stdout.flush()
        try:
            _wait_for_interrupt()
        except KeyboardInterrupt:
            stdout.write("Stopped.\n")


def _extras(server: FakeAlloyServer) -> list[str]:
    """What the options switched on, one line each; a webhook URL without its query (it may hold secrets)."""
    lines = []
    if server.rate_limit is not None:
        lines.append(f"Rate limit: {server.rate_limit} requests per endpoint per minute, then 429.")
    if server.item_log:
        lines.append("Item log: GET /api/item-log/design/{designCode}?Since=...&Page=...&PageSize=...")
    if server.workflow is not None:
        where = urlsplit(server.workflow.url)
        lines.append(
            f"Workflow: POST {where.scheme}://{where.netloc}{where.path} on create, edit and delete of "
            f"{server.workflow.design_code} items (body {server.workflow.body}, Bearer secret not shown)."
        )
    return lines


def _webhook_secret(path: str | os.PathLike[str] | None) -> str:
    """The secret from ``path`` (a regular file, read bounded, trimmed) or else from the environment."""
    if path is None:
        secret = os.environ.get(WEBHOOK_SECRET_ENV, "")
    else:
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"--webhook-secret-file {file} is not a regular file.")
        with file.open("rb") as stream:
            data = stream.read(MAX_SECRET_BYTES + 1)
        if len(data) > MAX_SECRET_BYTES:
            raise ValueError(f"--webhook-secret-file {file} is larger than {MAX_SECRET_BYTES} bytes.")
        try:
            secret = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            # Not the codec's message: it quotes a byte of the secret.
            raise ValueError(f"--webhook-secret-file {file} is not UTF-8 text.") from None
    if not secret:
        raise ValueError(f"A webhook needs a secret: --webhook-secret-file or ${WEBHOOK_SECRET_ENV}.")
    return secret


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return number


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
