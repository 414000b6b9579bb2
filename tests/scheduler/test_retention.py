"""Retention of run history: what an operator keeps, what goes, and that pruning never stalls workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scheduler.leases import lease_hold
from scheduler.models import Alert, Job, JobRun, Lease, StepRun
from scheduler.retention import KEEP_LATEST_RUNS, PRUNE_LEASE, PruneAlreadyRunning, history_prune
from scheduler.tasks_retention import prune_history

pytestmark = pytest.mark.django_db

NOW = timezone.now()
ON_POSTGRESQL = connection.vendor == "postgresql"


def add_runs(job: Job, ages_in_days: Sequence[float], *, status: str = JobRun.Status.SUCCEEDED) -> list[JobRun]:
    """Runs of ``job`` created ``ages_in_days`` ago (before NOW), each with one step."""
    runs = []
    for age in ages_in_days:
        run = JobRun.objects.create(job=job, trigger=JobRun.Trigger.SCHEDULE, status=status)
        JobRun.objects.filter(pk=run.pk).update(created_at=NOW - timedelta(days=age))
        StepRun.objects.create(run=run, position=1, function="examples.echo", status=StepRun.Status.SUCCEEDED)
        runs.append(run)
    return runs


def ids(runs: Sequence[JobRun]) -> set[int]:
    return {run.pk for run in runs}


def remaining(job: Job) -> set[int]:
    return set(JobRun.objects.filter(job=job).values_list("pk", flat=True))


@pytest.fixture
def retention(settings):
    settings.JOB_RUN_RETENTION_DAYS = 90
    settings.SYNC_RUN_RETENTION_DAYS = 30
    return settings


def test_each_job_keeps_its_latest_20_and_last_failure_and_loses_the_rest_past_the_cutoff(make_job, retention):
    busy, quiet = make_job(name="busy"), make_job(name="quiet")
    recent = add_runs(busy, [1, 2, 3, 89.9])  # newer than 90 days: never touched
    old_latest = add_runs(busy, [100 + i for i in range(KEEP_LATEST_RUNS - len(recent))])
    last_failure = add_runs(busy, [130], status=JobRun.Status.FAILED)
    older_failure = add_runs(busy, [140], status=JobRun.Status.FAILED)
    stale = add_runs(busy, [120 + i for i in range(5)] + [150, 400])
    queued_long_ago = add_runs(busy, [500], status=JobRun.Status.QUEUED)
    running_long_ago = add_runs(busy, [501], status=JobRun.Status.RUNNING)
    few = add_runs(quiet, [200, 300, 365])  # fewer than 20 runs: every one is among its latest

    [outcome, *_] = history_prune(now=NOW)

    kept = recent + old_latest + last_failure + queued_long_ago + running_long_ago
    assert remaining(busy) == ids(kept)
    assert remaining(quiet) == ids(few)
    assert outcome.removed == {"runs": len(stale) + 1, "steps": len(stale) + 1, "alerts": 0}
    assert not StepRun.objects.filter(run_id__in=ids(stale + older_failure)).exists()
    assert StepRun.objects.filter(run__job=busy).count() == len(kept)


def test_nothing_newer_than_the_cutoff_goes_however_many_runs_a_job_has(make_job, retention):
    job = make_job()
    runs = add_runs(job, [89.5] * 30 + [0.1] * 30)
    history_prune(now=NOW)
    assert remaining(job) == ids(runs)


def test_the_latest_failure_is_kept_but_an_older_one_is_not(make_job, retention):
    job = make_job()
    add_runs(job, range(1, 25))
    newest_failure = add_runs(job, [95], status=JobRun.Status.FAILED)
    older_failure = add_runs(job, [96], status=JobRun.Status.FAILED)
    history_prune(now=NOW)
    assert JobRun.objects.filter(job=job, status=JobRun.Status.FAILED).get().pk == newest_failure[0].pk
    assert not JobRun.objects.filter(pk=older_failure[0].pk).exists()


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_batches_of_any_size_and_runs_created_at_the_same_instant_prune_alike(make_job, retention, batch_size):
    job = make_job()
    recent = add_runs(job, [1] * KEEP_LATEST_RUNS)
    same_instant = add_runs(job, [100] * 25)  # one created_at: the page walk must not lose or repeat rows
    JobRun.objects.filter(pk__in=ids(same_instant)).update(created_at=NOW - timedelta(days=100))
    [outcome, *_] = history_prune(now=NOW, batch_size=batch_size)
    assert remaining(job) == ids(recent)
    assert outcome.removed["runs"] == 25


def test_the_command_says_what_it_removed(make_job, retention, capsys):
    job = make_job()
    add_runs(job, range(1, 21))
    add_runs(job, [100, 101, 102])
    call_command("prune_history")
    out = capsys.readouterr().out
    assert "job runs older than 90 days (before " in out
    assert "removed 3 runs, 3 steps, 0 alerts in " in out
    assert "sync records older than 30 days" in out
    assert remaining(job) and JobRun.objects.filter(job=job).count() == 20


def test_dry_run_says_what_would_go_and_writes_nothing(make_job, retention, capsys):
    job = make_job()
    add_runs(job, range(1, 21))
    add_runs(job, [100, 101, 102])
    before = (remaining(job), StepRun.objects.count(), Alert.objects.count())
    call_command("prune_history", "--dry-run")
    out = capsys.readouterr().out
    assert "would remove 3 runs, 3 steps, 0 alerts" in out
    assert "dry run: nothing was deleted" in out
    assert (remaining(job), StepRun.objects.count(), Alert.objects.count()) == before
    assert not Lease.objects.filter(name=PRUNE_LEASE).exists()  # not even the lease is written


@pytest.mark.parametrize("size", ["0", "-5", "10001"])
def test_a_batch_size_out_of_range_is_refused_before_anything_is_deleted(make_job, retention, size):
    job = make_job()
    runs = add_runs(job, [100 + i for i in range(25)])
    with pytest.raises(CommandError, match=f"the batch size must be from 1 to 10,000, not {int(size):,}"):
        call_command("prune_history", "--batch-size", size)
    assert remaining(job) == ids(runs)


def test_retention_0_keeps_everything_and_says_so(make_job, retention, capsys):
    retention.JOB_RUN_RETENTION_DAYS = 0
    retention.SYNC_RUN_RETENTION_DAYS = 0
    job = make_job()
    runs = add_runs(job, [1000 + i for i in range(30)])
    call_command("prune_history")
    out = capsys.readouterr().out
    assert "job runs: JOB_RUN_RETENTION_DAYS is 0, keeping everything" in out
    assert "sync records: SYNC_RUN_RETENTION_DAYS is 0, keeping everything" in out
    assert remaining(job) == ids(runs)


def test_a_second_prune_while_one_runs_stops_at_once_and_removes_nothing(make_job, retention):
    job = make_job()
    runs = add_runs(job, [100 + i for i in range(30)])
    assert lease_hold(name=PRUNE_LEASE, holder="other-host:1:abcd", ttl=60)
    with pytest.raises(CommandError, match="another prune_history is running") as error:
        call_command("prune_history")
    assert error.value.returncode == 1
    assert remaining(job) == ids(runs)
    assert "another prune_history is running" in prune_history()  # beat's task: logged, not an error
    assert remaining(job) == ids(runs)


def test_the_lease_is_released_so_the_next_prune_runs(make_job, retention):
    job = make_job()
    add_runs(job, [100 + i for i in range(25)])
    history_prune(now=NOW)
    add_runs(job, [200])
    [outcome, *_] = history_prune(now=NOW)
    assert outcome.removed["runs"] == 1


def test_beat_task_prunes_and_reports_each_part(make_job, retention):
    job = make_job()
    add_runs(job, [100 + i for i in range(25)])
    result = prune_history()
    assert "removed 5 runs, 5 steps, 0 alerts" in result
    assert "sync records" in result


def test_beat_entry_names_a_task_a_worker_registers(settings):
    """In a fresh process (this one imported the task module itself): what a worker loads at start."""
    import subprocess
    import sys

    from tests.helpers import PROJECT_DIR

    task = settings.CELERY_BEAT_SCHEDULE["scheduler.prune_history"]["task"]
    script = (
        "import django; django.setup()\n"
        "from config import celery_app\n"
        "celery_app.loader.import_default_modules()\n"
        f"print({task!r} in celery_app.tasks)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, check=True
    )
    assert shown.stdout.strip() == "True", shown.stderr


def _alert(run: JobRun | None, *, age_days: float, sent: bool) -> Alert:
    alert = Alert.objects.create(
        kind=Alert.Kind.FAILING, job=run.job if run else None, run=run, subject="s", text="t", attempts=1
    )
    moment: datetime | None = NOW - timedelta(days=age_days)
    Alert.objects.filter(pk=alert.pk).update(created_at=moment, emailed_at=moment if sent else None)
    return alert


def test_sent_alerts_past_the_cutoff_go_unsent_ones_stay_and_a_kept_alert_loses_its_pruned_run(make_job, retention):
    retention.JOB_ALERT_EMAILS = ["ops@example.org"]
    job = make_job()
    add_runs(job, range(1, 21))
    [pruned_run] = add_runs(job, [120], status=JobRun.Status.FAILED)
    add_runs(job, [10], status=JobRun.Status.FAILED)  # the last failure is a recent one
    old_sent = _alert(pruned_run, age_days=120, sent=True)
    old_unsent = _alert(pruned_run, age_days=120, sent=False)
    recent_sent = _alert(pruned_run, age_days=5, sent=True)

    [outcome, *_] = history_prune(now=NOW)

    assert outcome.removed == {"runs": 1, "steps": 1, "alerts": 1}
    assert not Alert.objects.filter(pk=old_sent.pk).exists()
    assert set(Alert.objects.values_list("pk", "run_id")) == {(old_unsent.pk, None), (recent_sent.pk, None)}


def test_an_alert_the_sweep_gave_up_on_is_pruned_with_its_age(make_job, retention):
    from scheduler.alert_channels import ALERT_MAX_ATTEMPTS

    retention.JOB_ALERT_EMAILS = ["ops@example.org"]
    given_up = _alert(None, age_days=100, sent=False)
    Alert.objects.filter(pk=given_up.pk).update(attempts=ALERT_MAX_ATTEMPTS)
    history_prune(now=NOW)
    assert not Alert.objects.exists()


# Mostly successes, as in life: then a job's last failure often lies beyond its latest 20 runs.
RUN_STATUSES = [JobRun.Status.SUCCEEDED] * 12 + [JobRun.Status.FAILED, JobRun.Status.SKIPPED, JobRun.Status.QUEUED]


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    runs=st.lists(st.tuples(st.integers(60, 200), st.sampled_from(RUN_STATUSES)), min_size=10, max_size=60),
    batch_size=st.integers(1, 40),
)
def test_whatever_the_history_the_prune_keeps_exactly_what_the_rule_says(make_job, retention, runs, batch_size):
    JobRun.objects.all().delete()
    job = make_job() if not Job.objects.exists() else Job.objects.get()
    made = [(add_runs(job, [age], status=status)[0], age, status) for age, status in runs]
    # Ages are whole days, so many runs share one created_at: ties are broken by id, newest first.
    newest_first = sorted(made, key=lambda m: (-m[1], m[0].pk), reverse=True)
    failures = [run for run, _, status in newest_first if status == JobRun.Status.FAILED]
    expected = {run.pk for run, _, _ in newest_first[:KEEP_LATEST_RUNS]} | {run.pk for run in failures[:1]}
    expected |= {run.pk for run, age, status in made if age <= 90 or status == JobRun.Status.QUEUED}

    history_prune(now=NOW, batch_size=batch_size)

    assert remaining(job) == expected
    assert StepRun.objects.count() == len(expected)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="two connections writing at once: PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_two_prunes_started_together_do_the_work_once_without_deadlock(make_job, retention):
    job = make_job()
    recent = add_runs(job, [1] * KEEP_LATEST_RUNS)
    add_runs(job, [100 + n / 100 for n in range(300)])
    start = threading.Barrier(2)
    results: list[object] = []

    def prune() -> None:
        start.wait()
        try:
            results.append(history_prune(now=NOW, batch_size=10)[0].removed["runs"])
        except PruneAlreadyRunning:
            results.append("busy")
        except BaseException as exc:  # noqa: BLE001 - a deadlock or any other error fails the test below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Either the second found the lease held, or it started once the first had finished and found nothing.
    assert sorted(results, key=str) in ([300, "busy"], [0, 300])
    assert remaining(job) == ids(recent)


# --- PostgreSQL: a million old runs pruned while workers keep recording runs -------------------------

MILLION = 1_000_000
# Modes that would stall workers: SHARE blocks their INSERT/UPDATE, the others block even reads.
TABLE_BLOCKING_MODES = {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"}


def old_runs_insert(job_ids: list[int], runs: int) -> None:
    """``runs`` finished runs from 200 days ago back, spread over ``job_ids``; a step on every fifth."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO scheduler_jobrun (job_id, trigger, status, created_at, started_at, finished_at, worker, error)
            SELECT (%s::bigint[])[1 + g %% cardinality(%s::bigint[])], 'schedule',
                   CASE WHEN g %% 97 = 0 THEN 'failed' ELSE 'succeeded' END,
                   t, t, t + interval '2 seconds', 'worker-1:42', ''
            FROM generate_series(1, %s) AS g,
                 LATERAL (SELECT now() - interval '200 days' - g * interval '1 second') AS s(t)
            """,
            [job_ids, job_ids, runs],
        )
        cursor.execute(
            """
            INSERT INTO scheduler_steprun (run_id, position, function, kwargs, status, error)
            SELECT id, 1, 'examples.echo', '{"message": "hi"}', 'succeeded', '' FROM scheduler_jobrun WHERE id % 5 = 0
            """
        )
        cursor.execute("ANALYZE scheduler_jobrun")
        cursor.execute("ANALYZE scheduler_steprun")


def _latest_and_last_failure(job: Job) -> set[int]:
    runs = JobRun.objects.filter(job=job).order_by("-created_at", "-id").values_list("pk", flat=True)
    return {*runs[:KEEP_LATEST_RUNS], *runs.filter(status=JobRun.Status.FAILED)[:1]}


class _Worker(threading.Thread):
    """Records runs as workers do (insert, claim, heartbeat, a step, finish), timing every statement."""

    def __init__(self, job: Job) -> None:
        super().__init__(daemon=True)
        self.job, self.stop, self.waits, self.runs = job, threading.Event(), [0.0], 0
        self.error: BaseException | None = None

    def timed(self, statement: Callable[[], object]) -> None:
        started = time.monotonic()
        statement()
        self.waits.append(time.monotonic() - started)

    def run(self) -> None:
        try:
            # A few hundred runs a second, as a busy worker pool records them; flat out, this thread
            # would mostly measure its own fight with the pruner for the GIL.
            while not self.stop.wait(0.002):
                self.one_run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.error = exc
        finally:
            connection.close()

    def one_run(self) -> None:
        run = JobRun(job=self.job, trigger=JobRun.Trigger.SCHEDULE)
        self.timed(run.save)
        now = timezone.now()
        updates = JobRun.objects.filter(pk=run.pk)
        self.timed(lambda: updates.update(status=JobRun.Status.RUNNING, started_at=now, heartbeat_at=now))
        self.timed(lambda: StepRun.objects.create(run=run, position=1, function="examples.echo"))
        self.timed(lambda: updates.update(status=JobRun.Status.SUCCEEDED, finished_at=timezone.now()))
        self.runs += 1


class _LockWatch(threading.Thread):
    """Polls pg_locks for the pruning backend's locks on the jobrun table, and its transactions' ages."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.modes: set[str] = set()
        self.longest_write_transaction = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connection.cursor() as cursor:
                while not self.stop.wait(0.01):
                    cursor.execute(
                        """
                        SELECT l.mode, extract(epoch FROM clock_timestamp() - a.xact_start)
                        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                        WHERE l.pid = %s AND l.relation = 'scheduler_jobrun'::regclass
                        """,
                        [self.pid],
                    )
                    for mode, age in cursor.fetchall():
                        self.modes.add(mode)
                        if mode != "AccessShareLock" and age is not None:
                            self.longest_write_transaction = max(self.longest_write_transaction, float(age))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            connection.close()


@pytest.mark.slow
@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="pg_locks and a million rows: PostgreSQL only (DATABASE_URL=postgres://...)"
)
@pytest.mark.django_db(transaction=True)
def test_a_million_old_runs_go_in_batches_while_workers_record_runs_unhindered(make_job, retention):
    jobs = [make_job(name=f"old {n}") for n in range(50)]
    inserting = time.monotonic()
    old_runs_insert([job.pk for job in jobs], MILLION)
    inserted = time.monotonic() - inserting
    expected = {job.pk: _latest_and_last_failure(job) for job in jobs}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [(pid,)] = cursor.fetchall()
    worker, watch = _Worker(make_job(name="live")), _LockWatch(pid)
    worker.start()
    watch.start()
    try:
        started = time.monotonic()
        [outcome, *_] = history_prune()
        seconds = time.monotonic() - started
    finally:
        worker.stop.set()
        watch.stop.set()
        worker.join(30)
        watch.join(30)
    assert worker.error is None and watch.error is None, (worker.error, watch.error)

    removed = outcome.removed["runs"]
    print(  # noqa: T201 - the figures the README quotes; shown with pytest -s
        f"\ninserted {MILLION:,} runs in {inserted:.1f} s; "
        f"pruned {removed:,} runs and {outcome.removed['steps']:,} steps in {seconds:.1f} s "
        f"({removed / seconds:,.0f} runs/s); meanwhile a worker recorded {worker.runs:,} runs, "
        f"slowest statement {max(worker.waits) * 1000:.0f} ms; pruner's locks on jobrun: {sorted(watch.modes)}, "
        f"longest writing transaction {watch.longest_write_transaction * 1000:.0f} ms"
    )
    assert removed == MILLION - sum(len(kept) for kept in expected.values())
    assert {job.pk: remaining(job) for job in jobs} == expected
    assert worker.runs > 0 and JobRun.objects.filter(job__name="live").count() == worker.runs
    assert max(worker.waits) < 1.0
    assert "RowExclusiveLock" in watch.modes  # the watch saw the pruner at work
    assert not watch.modes & TABLE_BLOCKING_MODES
    assert watch.longest_write_transaction < 1.0
