"""The README's first command: the demo starts everything, shows a sync and a run, and stops cleanly."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import PROJECT_DIR, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_demo_shows_a_sync_and_a_scheduled_run_then_stops_everything_on_ctrl_c(tmp_path):
    # Its own database and broker folders: the demo runs on the embedded defaults, whatever the suite uses.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "CELERY_BROKER_URL", "ALLOY_", "DJANGO_SETTINGS"))
    }
    env.update(
        VAR_DIR=str(tmp_path / "var"), DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", PYTHONUNBUFFERED="1"
    )
    output = tmp_path / "demo.out"
    with output.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(free_port())],
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "press Ctrl-C" in output.read_text(), timeout=200, interval=1, describe=str(output))
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    text = output.read_text()
    assert demo.returncode == 0, text
    assert "Synced from Alloy: read 12 items: 8 created, 0 updated, 0 unchanged, 0 removed, 4 invalid" in text
    assert "  invalid 65f0c1a0e4d0a1b2c3d4e509 'Broken: minute out of range': cron '61 * * * *'" in text
    assert re.search(r"Admin: http://127\.0\.0\.1:\d+/admin/  user: admin  password: \S+", text)
    assert re.search(r"Run \d+ of 'Every-minute smoke test': succeeded \(trigger: schedule", text)
    assert "  step 1 examples.echo {'message': 'smoke test ok'}: succeeded -> 'smoke test ok'" in text
    assert text.rstrip().endswith("Stopped.")
    pids = [int(pid) for pid in re.search(r"\(pids ([\d, ]+)\)", text).group(1).split(", ")]
    assert len(pids) == 4
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if alive(pid)]
