"""Runs end, and say what happened: whatever a step raises, returns or does (exit, fork), the run
reaches a terminal state with a truthful record, on the database under test. PostgreSQL refuses NUL
and unpaired surrogates in text and jsonb where SQLite keeps them, so each case runs on both.
"""

from __future__ import annotations

import json
import os

import pytest
from django.db import DatabaseError, connection

from scheduler.models import JobRun, StepRun
from scheduler.runner import job_run_execute
from scheduler.step_outcome import ERROR_MAX_CHARS, SUMMARY_MAX_CHARS
from scheduler.storable import MAX_JSON_DEPTH
from tests.scheduler import hostile_jobs

pytestmark = pytest.mark.django_db

THEN_ECHO = '\nexamples.echo {"message": "after"}'


def run(job, **kwargs):
    return job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND, **kwargs)


def recorded(job):
    """The job's one run and its steps as the database holds them: (run, [(status, result, error)])."""
    (stored,) = JobRun.objects.filter(job=job)
    return stored, list(stored.steps.order_by("position").values_list("status", "result", "error"))


def assert_terminal(stored):
    assert stored.status in {JobRun.Status.SUCCEEDED, JobRun.Status.FAILED}
    assert stored.finished_at is not None
    statuses = set(stored.steps.values_list("status", flat=True))
    assert not statuses & {StepRun.Status.RUNNING, StepRun.Status.PENDING}


# --- A step that exits, is interrupted or raises a BaseException -----------------------------------------


def test_a_step_calling_sys_exit_fails_the_run_naming_it_then_the_process_exits(make_job):
    job = make_job(steps='hostile.exit {"code": 3}' + THEN_ECHO)
    with pytest.raises(SystemExit) as exited:
        run(job)
    assert exited.value.code == 3  # a worker or command told to exit still exits, with its code
    stored, steps = recorded(job)
    assert (stored.status, stored.error) == ("failed", "step 1 (hostile.exit) failed: called sys.exit(3)")
    assert [status for status, _, _ in steps] == ["failed", "skipped"]
    assert "SystemExit: 3" in steps[0][2] and "sys.exit(code)" in steps[0][2]
    assert_terminal(stored)


def test_a_step_interrupted_by_ctrl_c_fails_the_run_then_the_interrupt_goes_on(make_job):
    job = make_job(steps="hostile.interrupt" + THEN_ECHO)
    with pytest.raises(KeyboardInterrupt):
        run(job)
    stored, steps = recorded(job)
    assert (stored.status, stored.error) == ("failed", "step 1 (hostile.interrupt) failed: KeyboardInterrupt")
    assert [status for status, _, _ in steps] == ["failed", "skipped"]
    assert_terminal(stored)


def test_celerys_own_shutdown_exception_in_a_solo_worker_is_recorded_and_raised_again(make_job):
    job = make_job(steps="hostile.celery_terminate")
    with pytest.raises(SystemExit):
        run(job)
    stored, _ = recorded(job)
    assert stored.error == "step 1 (hostile.celery_terminate) failed: celery.exceptions.WorkerTerminate: 1"


@pytest.mark.parametrize(
    ("kind", "named"),
    [("meltdown", "tests.scheduler.hostile_jobs.Meltdown: core too hot"), ("generator exit", "GeneratorExit")],
)
def test_any_other_base_exception_fails_the_run_naming_it_and_the_worker_carries_on(make_job, kind, named):
    job = make_job(steps=f'hostile.raise_base {{"kind": "{kind}"}}' + THEN_ECHO)
    returned = run(job)  # not raised again: nothing asked the process to stop
    stored, steps = recorded(job)
    assert returned.status == stored.status == "failed"
    assert stored.error == f"step 1 (hostile.raise_base) failed: {named}"
    assert [status for status, _, _ in steps] == ["failed", "skipped"]
    assert "Traceback (most recent call last)" in steps[0][2]


# --- Results the database refuses, or json cannot write or read back --------------------------------------


def _deep(depth, innermost):
    value = innermost
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("kind", "stored_as"),
    [
        ("nul", "a\\x00b"),
        ("surrogate", "\\ud800 and \\udfff"),
        ("nan", "nan"),
        ("infinities", ["inf", "-inf"]),
        ("set", "{1, 2}"),
        ("object", "<Opaque thing>"),
        ("bad repr", "[a BadRepr whose repr raised ValueError]"),
        ("non-text keys", {"1": "one", "null": "none", "(1, 2)": "pair", "2.5": "float", "false": "no"}),
        ("nul key", {"a\\x00": 1}),
        ("nested 1000", _deep(MAX_JSON_DEPTH, "[a list nested deeper than 100 levels: not stored]")),
        ("self-containing", [1, "[a list inside itself: not stored again]"]),
        ("huge int", "[an integer of 16,610 bits: too large to store as a number]"),
        ("bytes", "b'\\x00\\xff'"),
    ],
)
def test_a_result_the_database_would_refuse_is_stored_in_a_safe_form(make_job, kind, stored_as):
    job = make_job(steps=f'hostile.returns {{"kind": "{kind}"}}' + THEN_ECHO)
    assert run(job).status == "succeeded"
    stored, steps = recorded(job)
    assert steps == [("succeeded", stored_as, ""), ("succeeded", "after", "")]
    assert_terminal(stored)


def test_a_huge_result_is_stored_as_a_preview_saying_how_big_it_was(make_job, settings):
    job = make_job(steps='hostile.returns {"kind": "huge text"}')
    assert run(job).status == "succeeded"
    _, [(status, result, _)] = recorded(job)
    assert status == "succeeded"
    assert result == {
        "truncated": True,
        "bytes": 20 * 1024 * 1024 + 2,
        "preview": '"' + "x" * (settings.JOB_RESULT_MAX_BYTES // 2 - 1),
    }


# --- Errors: capped, escaped, and readable even when the exception is not ----------------------------------


def test_a_20_mb_error_message_is_stored_once_and_capped_with_a_note_of_what_was_cut(make_job):
    job = make_job(steps='hostile.long_error {"chars": 20000000}')
    stored = run(job)
    _, [(status, _, error)] = recorded(job)
    assert status == "failed"
    assert len(error) <= ERROR_MAX_CHARS
    assert error.startswith("Traceback (most recent call last)") and error.rstrip().endswith("x end")
    assert " characters cut ...] " in error
    assert len(stored.error) <= SUMMARY_MAX_CHARS + len("step 1 (hostile.long_error) failed: ")
    assert stored.error.startswith("step 1 (hostile.long_error) failed: RuntimeError: start xxx")
    assert JobRun.objects.get(pk=stored.pk).error == stored.error


def test_an_error_message_with_nul_and_surrogates_is_stored_escaped(make_job):
    job = make_job(steps="hostile.nul_error")
    stored = run(job)
    _, [(_, _, error)] = recorded(job)
    assert stored.error == "step 1 (hostile.nul_error) failed: RuntimeError: bad byte \\x00 and \\ud800 here"
    assert "RuntimeError: bad byte \\x00 and \\ud800 here" in error


@pytest.mark.parametrize("raises", ["value", "exit"])
def test_an_exception_whose_message_cannot_be_read_still_fails_the_run_naming_it(make_job, raises):
    job = make_job(steps=f'hostile.unprintable_error {{"raises": "{raises}"}}')
    stored = run(job)  # its __str__ raising SystemExit is not the step calling sys.exit: not raised again
    assert stored.status == "failed"
    assert stored.error.startswith("step 1 (hostile.unprintable_error) failed: tests.scheduler.hostile_jobs.")
    expected = "ValueError" if raises == "value" else "SystemExit"
    assert stored.error.endswith(f"UnprintableError: <unreadable: str() raised {expected}>")
    assert_terminal(JobRun.objects.get(pk=stored.pk))


# --- A step that forks ----------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.parametrize(("child", "exit_status"), [("return", 0), ("raise", 1), ("exit", 7)])
def test_a_forked_child_exits_at_once_and_only_the_runs_own_process_records_it(make_job, child, exit_status, capfd):
    job = make_job(steps=f'hostile.fork {{"child": "{child}"}}' + THEN_ECHO)
    result = run(job)
    assert result.status == "succeeded"
    stored, steps = recorded(job)
    # The child came back into the runner, wrote nothing and exited with its own status...
    assert steps == [("succeeded", {"child exit status": exit_status}, ""), ("succeeded", "after", "")]
    assert StepRun.objects.filter(run__job=job).count() == 2
    # ...and left the parent's database connection working: the second step was recorded through it.
    assert_terminal(stored)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if child != "return":
        assert "forked by a job step" in capfd.readouterr().err


# --- The database refusing a record anyway ----------------------------------------------------------------


@pytest.fixture
def refuse_updates(db):
    """Make the database refuse an update of ``table`` whose ``column`` mentions "poison", by a trigger."""
    made = []

    def refuse(table, column):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.{column}::text LIKE '%poison%' THEN RAISE EXCEPTION 'refused for the test'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
                cursor.execute(
                    f"CREATE TRIGGER refuse_poison BEFORE UPDATE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                )
            else:
                cursor.execute(
                    f"CREATE TRIGGER refuse_poison BEFORE UPDATE ON {table} WHEN NEW.{column} LIKE '%poison%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
                )
        made.append(table)

    yield refuse
    with connection.cursor() as cursor:  # a transactional test commits its DDL: take it away again
        for table in made:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS refuse_poison ON {table}")
                cursor.execute("DROP FUNCTION IF EXISTS refuse_poison()")
            else:
                cursor.execute("DROP TRIGGER IF EXISTS refuse_poison")


# Production runs in autocommit; tests and callers may run inside a transaction, where a refused
# statement would spoil every later one unless undone to a savepoint.
BOTH_TRANSACTION_MODES = pytest.mark.parametrize(
    "mode", ["inside a transaction", pytest.param("autocommit", marks=pytest.mark.django_db(transaction=True))]
)


@BOTH_TRANSACTION_MODES
def test_a_step_outcome_the_database_still_refuses_is_recorded_as_a_plain_failure(make_job, refuse_updates, mode):
    refuse_updates("scheduler_steprun", "result")
    job = make_job(steps='examples.echo {"message": "poison"}' + THEN_ECHO)
    stored = run(job)
    _, steps = recorded(job)
    assert stored.status == "failed"
    assert stored.error.startswith("step 1 (examples.echo) failed: its outcome could not be stored: ")
    assert "refused for the test" in stored.error
    assert steps[0][0:2] == ("failed", None)
    assert steps[1][0] == "skipped"


@BOTH_TRANSACTION_MODES
def test_a_run_whose_ending_the_database_refuses_is_still_ended_failed_and_the_error_raised(
    make_job, refuse_updates, mode
):
    refuse_updates("scheduler_jobrun", "error")
    job = make_job(steps='examples.fail {"message": "poison"}')
    with pytest.raises(DatabaseError, match="refused for the test"):
        run(job)
    stored, steps = recorded(job)
    assert stored.status == "failed"
    assert [status for status, _, _ in steps] == ["failed"]
    assert stored.error.startswith("the runner stopped before the run's outcome was recorded: ")
    assert_terminal(stored)


def test_an_error_between_steps_ends_the_run_failed_and_propagates(make_job):
    job = make_job(steps='examples.echo {"message": "one"}' + THEN_ECHO)

    def stdout_gone(step):
        raise BrokenPipeError("stdout is closed")

    with pytest.raises(BrokenPipeError):
        run(job, on_step=stdout_gone)
    stored, steps = recorded(job)
    assert stored.status == "failed"
    assert stored.error == (
        "the runner stopped before the run's outcome was recorded: BrokenPipeError: stdout is closed"
    )
    assert [status for status, _, _ in steps] == ["succeeded", "skipped"]


def test_a_worker_name_longer_than_its_column_is_cut_not_refused(make_job):
    stored = run(make_job(), worker="w" * 1000)
    assert stored.status == "succeeded"
    assert len(JobRun.objects.get(pk=stored.pk).worker) <= 255


def test_every_stored_result_reads_back_as_json(make_job):
    job = make_job(steps="\n".join(f'hostile.returns {{"kind": "{kind}"}}' for kind in hostile_jobs.RESULTS))
    run(job)
    for result in StepRun.objects.filter(run__job=job).values_list("result", flat=True):
        json.dumps(result, allow_nan=False)
