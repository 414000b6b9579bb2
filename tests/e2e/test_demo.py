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


def demo_env(tmp_path):
    """Its own database and broker folders: the demo runs on the embedded defaults, whatever the suite uses."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "CELERY_BROKER_URL", "ALLOY_", "DJANGO_SETTINGS"))
    }
    env.update(
        VAR_DIR=str(tmp_path / "var"), DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", PYTHONUNBUFFERED="1"
    )
    return env


def start_demo(tmp_path, env, *options):
    output = tmp_path / "demo.out"
    with output.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(free_port()), *options],
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return demo, output


def test_the_demo_shows_a_sync_and_a_scheduled_run_then_stops_everything_on_ctrl_c(tmp_path):
    demo, output = start_demo(tmp_path, demo_env(tmp_path))
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
    assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/admin/dashboard/", text)
    assert re.search(r"Run \d+ of 'Every-minute smoke test': succeeded \(trigger: schedule", text)
    assert "  step 1 examples.echo {'message': 'smoke test ok'}: succeeded -> 'smoke test ok'" in text
    # The way back: the fake Alloy holds what the worker wrote onto the items.
    assert "Alloy now shows on 'Broken: minute out of range' (written back by the worker): status invalid" in text
    assert "out of range: 61 is not in 0-59; not scheduled until the item is fixed" in text
    assert "Alloy now shows on 'Every-minute smoke test': status succeeded" in text
    assert re.search(r"  message: last run succeeded at \d{4}-\d\d-\d\d \d\d:\d\d UTC after", text)
    assert re.search(r"  last run: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert text.rstrip().endswith("Stopped.")
    pids = [int(pid) for pid in re.search(r"\(pids ([\d, ]+)\)", text).group(1).split(", ")]
    assert len(pids) == 4
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if alive(pid)]


OTHER_SYNC = "other-host:4242:beefcafe"


@pytest.mark.parametrize(
    ("held_for", "sync_wait", "then"),
    [
        pytest.param(8, "60", "Synced from Alloy: read 12 items: 8 created", id="waits-then-syncs"),
        pytest.param(300, "2", "going on without the demo's own sync", id="goes-on-without"),
    ],
)
def test_the_demo_says_it_waits_while_another_sync_holds_the_lock_and_never_ends_in_a_traceback(
    tmp_path, held_for, sync_wait, then
):
    env = demo_env(tmp_path)
    hold = (
        "from alloysync.sync import SYNC_LEASE; from scheduler.leases import lease_hold; "
        f"assert lease_hold(name=SYNC_LEASE, holder={OTHER_SYNC!r}, ttl={held_for})"
    )
    for command in (["migrate", "--verbosity=0"], ["shell", "-c", hold]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=PROJECT_DIR, env=env, check=True, timeout=120)
    demo, output = start_demo(tmp_path, env, "--sync-wait", sync_wait)
    try:
        wait_for(lambda: "Admin:" in output.read_text(), timeout=120, interval=0.5, describe=str(output))
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    text = output.read_text()
    assert demo.returncode == 0, text
    assert "Traceback" not in text
    waiting = text.index(f"Another sync holds the sync lock ({OTHER_SYNC}, since ")
    assert f"waiting up to {sync_wait} s for it (--sync-wait)..." in text
    assert waiting < text.index(then) < text.index("Admin:")
    assert text.rstrip().endswith("Stopped.")
