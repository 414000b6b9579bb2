"""The fake Alloy's command line: ``python -m alloysync.fake_alloy`` and ``manage.py fake_alloy`` alike."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.management.base import BaseCommand

from alloysync.fake_alloy import SAMPLE_ITEMS_PATH, TITLE_ATTRIBUTE, cli, make_item
from alloysync.management.commands.fake_alloy import Command
from tests.helpers import PROJECT_DIR

pytestmark = pytest.mark.timeout(60)

# "  --port PORT   port to listen on": the option, then (after two spaces or on later lines) its help.
OPTION_LINE = re.compile(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$")


def options_in_help(text: str) -> dict[str, str]:
    """Each option that ``--help`` lists (``--port PORT``) mapped to its help, rewrapped onto one line."""
    options: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        match = OPTION_LINE.match(line)
        if match:
            current = match.group(1)
            options[current] = match.group(2) or ""
        elif current is not None and line.startswith("   ") and line.strip():
            options[current] = f"{options[current]} {line.strip()}".strip()
        else:
            current = None
    return options


def help_text(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, *command, "--help"],
        cwd=PROJECT_DIR,
        env={**os.environ, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def test_main_serves_the_items_until_interrupted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps([make_item({TITLE_ATTRIBUTE: "only one"}, item_id="1" * 24)]))
    out = io.StringIO()
    answers: list[int] = []

    def request_then_interrupt() -> None:
        url = re.search(r"http://127\.0\.0\.1:\d+", out.getvalue())
        assert url is not None
        answers.append(
            httpx.get(f"{url.group()}/api/item/{'1' * 24}", headers={"Authorization": "Bearer k"}).status_code
        )
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_wait_for_interrupt", request_then_interrupt)

    status = cli.main(["--port", "0", "--items", str(items_file), "--api-key", "k"], stdout=out)

    assert status == 0
    assert answers == [200]
    assert "1 items" in out.getvalue()
    assert "accepting the key given" in out.getvalue()


def test_manage_py_and_python_m_list_the_same_options() -> None:
    module = options_in_help(help_text("-m", "alloysync.fake_alloy"))
    manage = options_in_help(help_text("manage.py", "fake_alloy"))
    django_own = options_in_help(BaseCommand().create_parser("manage.py", "fake_alloy").format_help())

    ours = {"--port PORT", "--items ITEMS", "--api-key API_KEY", "--latency LATENCY", "--error-rate ERROR_RATE"}
    assert ours <= module.keys()
    assert manage == {**django_own, **module}


def test_both_entry_points_take_the_same_defaults() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    module = vars(parser.parse_args([]))

    manage = vars(Command().create_parser("manage.py", "fake_alloy").parse_args([]))

    assert {name: manage[name] for name in module} == module
    assert module["items"] == SAMPLE_ITEMS_PATH
