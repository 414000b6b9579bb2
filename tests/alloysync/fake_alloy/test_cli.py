"""The fake Alloy's command line: ``python -m alloysync.fake_alloy`` and ``manage.py fake_alloy`` alike."""

from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.management.base import BaseCommand

from alloysync.fake_alloy import SAMPLE_DESIGN_CODE, SAMPLE_ITEMS_PATH, TITLE_ATTRIBUTE, cli, make_item
from alloysync.management.commands.fake_alloy import Command
from tests.alloysync.fake_alloy.helpers import Receiver
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

    ours = {
        "--port PORT",
        "--items ITEMS",
        "--api-key API_KEY",
        "--latency LATENCY",
        "--error-rate ERROR_RATE",
        "--rate-limit RATE_LIMIT",
        "--item-log",
        "--webhook-url WEBHOOK_URL",
        "--webhook-secret-file WEBHOOK_SECRET_FILE",
        "--webhook-design WEBHOOK_DESIGN",
    }
    assert ours <= module.keys()
    assert manage == {**django_own, **module}


def test_both_entry_points_take_the_same_defaults() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    module = vars(parser.parse_args([]))

    manage = vars(Command().create_parser("manage.py", "fake_alloy").parse_args([]))

    assert {name: manage[name] for name in module} == module
    assert module["items"] == SAMPLE_ITEMS_PATH


def test_both_entry_points_parse_the_new_options_alike(tmp_path: Path) -> None:
    argv = [
        *("--rate-limit", "5", "--item-log", "--webhook-url", "http://127.0.0.1:9/hook"),
        *("--webhook-secret-file", str(tmp_path / "secret"), "--webhook-body", "query"),
    ]
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    module = vars(parser.parse_args(argv))

    manage = vars(Command().create_parser("manage.py", "fake_alloy").parse_args(argv))

    assert {name: manage[name] for name in module} == module
    assert (module["rate_limit"], module["item_log"], module["webhook_body"]) == (5, True, "query")
    assert module["webhook_secret_file"] == tmp_path / "secret"


@pytest.mark.parametrize("limit", ["0", "-1", "ten"])
def test_a_rate_limit_must_be_a_positive_whole_number(limit: str) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)

    with pytest.raises(SystemExit):
        parser.parse_args(["--rate-limit", limit])


def test_main_serves_with_the_rate_limit_item_log_and_workflow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: Receiver
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret-from-a-file\n")
    out = io.StringIO()
    seen: dict[str, object] = {}

    def use_it_then_interrupt() -> None:
        url = re.search(r"http://127\.0\.0\.1:\d+", out.getvalue())
        assert url is not None
        with httpx.Client(base_url=url.group(), headers={"Authorization": "Bearer k"}) as http:
            item = http.get(f"/api/item/{'1' * 24}").json()["item"]
            seen["put"] = http.put(f"/api/item/{'1' * 24}", json={"signature": item["signature"]}).status_code
            seen["refused"] = http.get(f"/api/item/{'1' * 24}").status_code  # the second GET this minute
            seen["log"] = http.get(f"/api/item-log/design/{SAMPLE_DESIGN_CODE}").status_code
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_wait_for_interrupt", use_it_then_interrupt)
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps([make_item({TITLE_ATTRIBUTE: "only one"}, item_id="1" * 24)]))

    cli.main(
        [
            *("--port", "0", "--items", str(items_file), "--api-key", "k", "--rate-limit", "1", "--item-log"),
            *("--webhook-url", f"{receiver.url}?token=in-the-url", "--webhook-secret-file", str(secret_file)),
        ],
        stdout=out,
    )

    assert seen == {"put": 200, "refused": 429, "log": 200}
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:  # calls are made from a background thread
        time.sleep(0.02)
    # The PUT's edit only: the items loaded at the start were there before the workflow.
    assert [call.headers["authorization"] for call in receiver.received] == ["Bearer s3cret-from-a-file"]
    assert "Rate limit: 1 requests per endpoint per minute" in out.getvalue()
    assert "Item log:" in out.getvalue()
    assert receiver.url in out.getvalue()
    assert "s3cret" not in out.getvalue()
    assert "in-the-url" not in out.getvalue()


def test_the_webhook_secret_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: Receiver
) -> None:
    monkeypatch.setenv("ALLOY_WEBHOOK_SECRET", "from-the-environment")
    monkeypatch.setattr(cli, "_wait_for_interrupt", lambda: None)
    out = io.StringIO()

    cli.main(["--port", "0", "--webhook-url", receiver.url, "--webhook-body", "item"], stdout=out)

    assert "Workflow: POST" in out.getvalue()
    assert "from-the-environment" not in out.getvalue()


def test_a_webhook_without_a_secret_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ALLOY_WEBHOOK_SECRET", raising=False)
    monkeypatch.setattr(cli, "_wait_for_interrupt", lambda: None)
    empty, folder = tmp_path / "empty", tmp_path / "folder"
    empty.write_text("\n")
    folder.mkdir()

    for extra in ([], ["--webhook-secret-file", str(empty)], ["--webhook-secret-file", str(folder)]):
        with pytest.raises(ValueError, match="secret"):
            cli.main(["--port", "0", "--webhook-url", "http://127.0.0.1:9/hook", *extra], stdout=io.StringIO())


def test_every_parsed_option_reaches_serve_from_both_entry_points() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    parsed = set(vars(parser.parse_args([])))
    serve_takes = set(inspect.signature(cli.serve).parameters) - {"stdout"}
    assert parsed == set(cli.SERVE_OPTIONS) == serve_takes


def test_manage_py_fake_alloy_serves_with_the_new_options(tmp_path: Path) -> None:
    # The management command once parsed --rate-limit but never passed it on: check it over HTTP.
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fake_alloy", "--port", str(port), "--rate-limit", "1", "--api-key", "k"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/session/me"
        deadline = time.monotonic() + 30
        while True:
            try:
                first = httpx.get(url, headers={"Authorization": "Bearer k"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "manage.py fake_alloy did not start"
                time.sleep(0.2)
        # Two more: should the first two straddle a minute's end, the third is still over the limit.
        more = [httpx.get(url, headers={"Authorization": "Bearer k"}, timeout=2).status_code for _ in range(2)]
        assert first.status_code == 200 and 429 in more
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
