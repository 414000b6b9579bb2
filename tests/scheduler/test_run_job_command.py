import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.models import Job, JobRun

pytestmark = pytest.mark.django_db


def test_it_runs_a_job_now_and_prints_each_step(make_job, capsys):
    job = make_job(name="gullies", steps='examples.echo {"message": "one"}\nexamples.echo {"message": "two"}')
    call_command("run_job", str(job.pk))
    out = capsys.readouterr().out
    assert f"Running job {job.pk} (gullies): 2 step(s)" in out
    assert "step 1 examples.echo: succeeded -> 'one'" in out
    assert "step 2 examples.echo: succeeded -> 'two'" in out
    run = JobRun.objects.get(job=job)
    assert run.trigger == JobRun.Trigger.COMMAND
    assert run.status == JobRun.Status.SUCCEEDED
    assert f"Run {run.pk} succeeded" in out


def test_it_finds_a_job_by_alloy_item_id_or_name(make_job, capsys):
    job = make_job(name="by name", source=Job.Source.ALLOY, external_id="642062376be3a0036bbbb64b")
    call_command("run_job", "642062376be3a0036bbbb64b")
    call_command("run_job", "by name")
    assert JobRun.objects.filter(job=job, status="succeeded").count() == 2


def test_a_failed_run_exits_1_with_the_traceback(make_job, capsys):
    job = make_job(steps='examples.fail {"message": "pump offline"}\nexamples.echo {"message": "never"}')
    with pytest.raises(CommandError, match=r"failed: step 1 \(examples.fail\) failed: RuntimeError: pump offline") as e:
        call_command("run_job", str(job.pk))
    assert e.value.returncode == 1
    out = capsys.readouterr().out
    assert "step 1 examples.fail: failed" in out
    assert "Traceback (most recent call last)" in out
    assert "step 2 examples.echo: skipped" in out


def test_an_unknown_job_is_a_clear_message(make_job):
    make_job(name="nightly report")
    with pytest.raises(
        CommandError, match=r"no job has id, Alloy item id or name 'nightly reprot'; did you mean 'nightly report'\?"
    ):
        call_command("run_job", "nightly reprot")


def test_an_ambiguous_name_lists_the_candidates(make_job):
    first = make_job(name="twin")
    second = make_job(name="twin")
    with pytest.raises(
        CommandError, match=f"'twin' matches several jobs: {first.pk} \\(twin\\), {second.pk} \\(twin\\)"
    ):
        call_command("run_job", "twin")


def test_the_real_command_exits_1_on_failure(make_job, transactional_db):
    import os
    import subprocess
    import sys

    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("the child process cannot see an in-memory SQLite test database; runs on PostgreSQL")
    from tests.helpers import PROJECT_DIR, database_url_for_children

    job = make_job(steps='examples.fail {"message": "boom"}')
    result = subprocess.run(
        [sys.executable, "manage.py", "run_job", str(job.pk)],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url_for_children()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "RuntimeError: boom" in result.stderr


def test_a_step_calling_sys_exit_ends_the_command_with_its_code_once_the_run_is_recorded(make_job, capsys):
    from tests.scheduler import hostile_jobs  # noqa: F401 - registers hostile.exit

    job = make_job(steps='hostile.exit {"code": 3}\nexamples.echo {"message": "never"}')
    with pytest.raises(SystemExit) as exited:
        call_command("run_job", str(job.pk))
    assert exited.value.code == 3
    out = capsys.readouterr().out
    assert "step 1 hostile.exit: failed" in out
    assert "step 2 examples.echo: skipped" in out
    run = JobRun.objects.get(job=job)
    assert (run.status, run.error) == ("failed", "step 1 (hostile.exit) failed: called sys.exit(3)")


def test_the_real_command_interrupted_by_a_step_exits_and_leaves_the_run_failed(make_job, transactional_db):
    import os
    import signal
    import subprocess
    import sys

    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("the child process cannot see an in-memory SQLite test database; runs on PostgreSQL")
    from tests.helpers import PROJECT_DIR, database_url_for_children
    from tests.scheduler import hostile_jobs  # noqa: F401 - registers the functions the job names

    job = make_job(steps='hostile.exit {"code": 3}')
    interrupted = make_job(name="interrupted", steps="hostile.interrupt")
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_children(),
        "JOB_MODULES": "jobs.examples,tests.scheduler.hostile_jobs",
    }
    # Python ends a process whose KeyboardInterrupt went uncaught by SIGINT, as a shell expects.
    for target, code in ((job, 3), (interrupted, -signal.SIGINT)):
        result = subprocess.run(
            [sys.executable, "manage.py", "run_job", str(target.pk)],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == code, result.stderr
        assert JobRun.objects.get(job=target).status == JobRun.Status.FAILED


@pytest.mark.parametrize("blank", ["", " ", "\t", "\n"])
def test_a_blank_job_is_refused_with_exit_status_2_and_runs_nothing(make_job, blank):
    # Every local job has a blank Alloy item id: a blank argument used to run one of them.
    make_job(name="drop-tables-nightly")
    with pytest.raises(CommandError, match="no job given: give the job's id, its Alloy item id or its exact name") as e:
        call_command("run_job", blank)
    assert e.value.returncode == 2
    assert not JobRun.objects.exists()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blank=st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003\u3000", max_size=6))
def test_no_blank_text_ever_picks_a_job(make_job, blank):
    if not Job.objects.exists():
        make_job(name="one")
        make_job(name="two")
    with pytest.raises(CommandError) as e:
        call_command("run_job", blank)
    assert e.value.returncode == 2
    assert not JobRun.objects.exists()


HOSTILE_NAME = "twin\n\x1b[31mred \u202eevil <!channel> " + "X" * 150


def test_names_in_the_command_s_messages_are_one_bounded_line_without_control_characters(make_job):
    first, second = make_job(name=HOSTILE_NAME), make_job(name=HOSTILE_NAME)
    with pytest.raises(CommandError) as e:
        call_command("run_job", HOSTILE_NAME)
    message = str(e.value)
    assert message.startswith("'twin [31mred evil <!channel> XXX")
    assert f"{first.pk} (twin [31mred evil" in message and f"{second.pk} (twin" in message
    for character in "\n\x1b\u202e":
        assert character not in message
    assert len(message) < 400  # three names of 80 characters at most, not 3 x 200


def test_a_close_hostile_name_is_suggested_cleaned(make_job):
    make_job(name="nightly\u202e report")
    with pytest.raises(CommandError, match=r"did you mean 'nightly report'\?") as e:
        call_command("run_job", "nightly reprot")
    assert "\u202e" not in str(e.value)


def test_the_running_line_prints_the_name_cleaned(make_job, capsys):
    job = make_job(name="a\u202eb\nc")
    call_command("run_job", str(job.pk))
    assert f"Running job {job.pk} (ab c): 1 step(s)" in capsys.readouterr().out


def test_a_superscript_digit_is_not_a_job_id(make_job):
    make_job()
    with pytest.raises(CommandError, match="no job has id, Alloy item id or name '²'"):
        call_command("run_job", "²")
