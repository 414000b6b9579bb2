import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE
from alloysync.models import SyncRun
from config.env_secrets import Secret
from scheduler.models import Job
from tests.alloysync.helpers import job_item, sample_items

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def test_sync_alloy_prints_progress_a_summary_and_each_invalid_item(alloy, capsys):
    for item in sample_items():
        alloy.put_item(item)
    call_command("sync_alloy")
    captured = capsys.readouterr()
    assert "read page 1 (12 items so far)" in captured.err
    lines = captured.out.splitlines()
    assert lines[0] == "read 12 items: 8 created, 0 updated, 0 unchanged, 0 removed, 4 invalid"
    assert (
        "  invalid 65f0c1a0e4d0a1b2c3d4e509 'Broken: minute out of range': "
        "cron '61 * * * *': minute '61' is out of range: 61 is not in 0-59"
    ) in lines
    assert any(
        line.startswith("  invalid 65f0c1a0e4d0a1b2c3d4e50b 'Broken: unknown function': step 2:") for line in lines
    )
    run = SyncRun.objects.get()
    assert lines[-1] == f"sync {run.pk} (full) succeeded: 1 requests to Alloy"


def test_sync_alloy_dry_run_shows_changes_and_writes_nothing(alloy, capsys):
    alloy.put_item(job_item("Gullies", n=1))
    call_command("sync_alloy", "--dry-run")
    out = capsys.readouterr().out
    assert "read 1 items: would create 1, update 0, leave 0 unchanged, remove 0; 0 invalid" in out
    assert f"  create {1:024x} 'Gullies': 30 2 * * * (UTC)" in out
    assert out.rstrip().endswith("dry run: nothing was written")
    assert not Job.objects.exists() and not SyncRun.objects.exists()


def test_sync_alloy_exits_1_when_alloy_refuses_the_key(alloy, settings):
    settings.ALLOY_API_KEY = Secret("11111111-2222-4333-8444-555555555555")
    with pytest.raises(CommandError, match="Check ALLOY_API_KEY") as caught:
        call_command("sync_alloy")
    assert caught.value.returncode == 1
    assert "11111111" not in str(caught.value)


def test_sync_alloy_exits_1_naming_missing_settings(settings):
    settings.ALLOY_API_KEY = None
    settings.ALLOY_JOB_DESIGN = ""
    with pytest.raises(CommandError, match=r"cannot sync with Alloy: set ALLOY_API_KEY, ALLOY_JOB_DESIGN"):
        call_command("sync_alloy")


def test_sync_alloy_exits_1_when_refused_and_applies_with_allow_mass_removal(alloy, capsys):
    alloy.put_item(job_item(n=1))
    call_command("sync_alloy")
    alloy.remove_item(f"{1:024x}")
    with pytest.raises(CommandError, match="refused: this sync would remove 1 of 1 live jobs"):
        call_command("sync_alloy")
    call_command("sync_alloy", "--allow-mass-removal")
    assert "0 created, 0 updated, 0 unchanged, 1 removed" in capsys.readouterr().out


def test_sync_alloy_says_so_when_another_sync_runs(alloy):
    from alloysync.sync import SYNC_LEASE
    from scheduler.leases import lease_hold

    lease_hold(name=SYNC_LEASE, holder="elsewhere:1:x", ttl=300)
    with pytest.raises(CommandError, match="another sync is running"):
        call_command("sync_alloy")


def test_sync_history_and_job_errors_show_in_the_admin(alloy, admin_client):
    alloy.put_item(job_item("Gullies", n=1))
    call_command("sync_alloy")
    alloy.edit_item(f"{1:024x}", {SAMPLE_CRON_ATTRIBUTE: "0 0 31 2 *"})
    call_command("sync_alloy")
    first, second = SyncRun.objects.order_by("pk")
    listing = admin_client.get(reverse("admin:alloysync_syncrun_changelist")).content.decode()
    newest, oldest = (reverse("admin:alloysync_syncrun_change", args=[run.pk]) for run in (second, first))
    assert listing.index(newest) < listing.index(oldest)
    detail = admin_client.get(newest).content.decode()
    assert "never fires" in detail and f"{1:024x}" in detail
    jobs = admin_client.get(reverse("admin:scheduler_job_changelist")).content.decode()
    assert "never fires: day-of-month" in jobs
