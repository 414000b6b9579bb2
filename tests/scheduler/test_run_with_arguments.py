"""Run now with other arguments: checked as steps are, before anything is queued; recorded with the run."""

from __future__ import annotations

import json

import pytest
from celery.signals import before_task_publish
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scheduler.jobspec import JobSpecError
from scheduler.models import JobRun, StepRun
from scheduler.runner import job_run_execute
from scheduler.services import job_run_now, run_arguments_initial, run_arguments_parse

pytestmark = pytest.mark.django_db

TWO_STEPS = 'examples.echo {"message": "usual"}\nexamples.sleep {"seconds": 0}'


@pytest.fixture
def sent():
    """The run_job messages published to the broker, as (args, kwargs)."""
    published = []

    def record(body=None, headers=None, **kwargs):
        if headers and headers.get("task") == "scheduler.run_job":
            published.append(body)

    before_task_publish.connect(record, weak=False)
    yield published
    before_task_publish.disconnect(record)


def test_the_form_starts_from_each_step_s_current_arguments_as_json(make_job):
    job = make_job(steps=TWO_STEPS)
    texts = run_arguments_initial(job)
    assert [json.loads(text) for text in texts] == [{"message": "usual"}, {"seconds": 0}]
    assert texts[0] == '{\n  "message": "usual"\n}'


def test_a_run_with_arguments_uses_and_records_them_and_who_asked(
    make_job, django_user_model, django_capture_on_commit_callbacks, sent
):
    job = make_job(steps=TWO_STEPS)
    operator = django_user_model.objects.create_user("ops")
    step_kwargs = run_arguments_parse(job, ['{"message": "special"}', '{"seconds": 0.01}'])
    with django_capture_on_commit_callbacks(execute=True):
        run = job_run_now(job=job, requested_by=operator, step_kwargs=step_kwargs)
    assert len(sent) == 1  # queued once, after commit
    queued = JobRun.objects.get(pk=run.pk)
    assert (queued.status, queued.requested_by) == (JobRun.Status.QUEUED, operator)
    assert [s.kwargs for s in queued.steps.order_by("position")] == [{"message": "special"}, {"seconds": 0.01}]

    finished = job_run_execute(job=job, trigger=queued.trigger, run=queued)  # what the worker does
    assert finished.status == JobRun.Status.SUCCEEDED
    steps = list(StepRun.objects.filter(run=run).order_by("position"))
    assert [(s.kwargs, s.result, s.status) for s in steps] == [
        ({"message": "special"}, "special", "succeeded"),
        ({"seconds": 0.01}, 0.01, "succeeded"),
    ]
    job.refresh_from_db()
    assert job.steps[0]["kwargs"] == {"message": "usual"}  # for this run only


def test_run_now_without_arguments_runs_the_job_s_own(make_job, django_capture_on_commit_callbacks, sent):
    job = make_job(steps=TWO_STEPS)
    with django_capture_on_commit_callbacks(execute=True):
        run = job_run_now(job=job)
    finished = job_run_execute(job=job, trigger=run.trigger, run=JobRun.objects.get(pk=run.pk))
    assert finished.status == JobRun.Status.SUCCEEDED
    assert list(StepRun.objects.filter(run=run).values_list("result", flat=True)) == ["usual", 0.0]


@pytest.mark.parametrize(
    ("texts", "errors"),
    [
        (
            ['{"message": "x"', "{}"],
            ["step 1 (examples.echo): arguments are not valid JSON: Expecting ',' delimiter (column 16)"],
        ),
        (
            ["{}", '{"seconds": 1, "minutes": 2}'],
            [
                "step 1 (examples.echo): arguments do not fit examples.echo(message: str) -> str: missing a "
                "required argument: 'message'",
                "step 2 (examples.sleep): arguments do not fit examples.sleep(seconds: float) -> float: got an "
                "unexpected keyword argument 'minutes'",
            ],
        ),
        (
            ['["not", "an object"]', '{"seconds": 1}'],
            ["step 1 (examples.echo): arguments must be a JSON object, got list"],
        ),
        (['{"message": "x"}'], ["the job has 2 step(s) but arguments were given for 1"]),
        (
            ['{"message": "bad \\u0000 byte"}', '{"seconds": 0}'],
            ["step 1 (examples.echo): argument message holds a NUL character (at position 5)"],
        ),
    ],
)
def test_bad_arguments_are_refused_per_step_and_nothing_is_queued(make_job, texts, errors, sent):
    job = make_job(steps=TWO_STEPS)
    with pytest.raises(JobSpecError) as caught:
        run_arguments_parse(job, texts)
    assert caught.value.errors == errors
    assert not JobRun.objects.exists() and not sent


def test_the_service_refuses_values_that_are_not_json_and_functions_gone_from_the_registry(make_job, sent):
    job = make_job(steps=TWO_STEPS)
    with pytest.raises(JobSpecError, match=r"step 1 \(examples.echo\): argument message is a set, not a JSON value"):
        job_run_now(job=job, step_kwargs=[{"message": {1, 2}}, {"seconds": 0}])
    job.steps = [{"function": "examples.gone", "kwargs": {}}]
    with pytest.raises(JobSpecError, match=r"step 1 \(examples.gone\): function .examples.gone. is not registered"):
        job_run_now(job=job, step_kwargs=[{}])
    assert not JobRun.objects.exists() and not sent


def test_arguments_too_big_to_keep_are_refused(make_job):
    job = make_job(steps='examples.echo {"message": "x"}')
    with pytest.raises(JobSpecError, match="more than the 4,194,304 a job may hold"):
        job_run_now(job=job, step_kwargs=[{"message": "x" * (4 * 1024 * 1024)}])


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_any_text_is_either_run_arguments_or_a_per_step_error(make_job, text):
    job = make_job(steps='examples.echo {"message": "x"}')
    try:
        (kwargs,) = run_arguments_parse(job, [text])
    except JobSpecError as exc:
        assert exc.errors and all(error.startswith("step 1") for error in exc.errors)
    else:
        assert set(kwargs) <= {"message"}


# --- manage.py run_job --kwargs ---------------------------------------------------------------------


def test_run_job_takes_kwargs_by_step_number_or_function_name(make_job, capsys):
    job = make_job(steps=TWO_STEPS)
    call_command("run_job", str(job.pk), "--kwargs", '1={"message": "by number"}', "--kwargs", '2={"seconds": 0}')
    assert "step 1 examples.echo: succeeded -> 'by number'" in capsys.readouterr().out
    call_command(
        "run_job", str(job.pk), "--kwargs", 'examples.echo={"message": "by name"}', "--kwargs", '2={"seconds": 0}'
    )
    out = capsys.readouterr().out
    assert "step 1 examples.echo: succeeded -> 'by name'" in out
    run = JobRun.objects.filter(job=job).order_by("-pk").first()
    assert list(run.steps.order_by("position").values_list("kwargs", flat=True)) == [
        {"message": "by name"},
        {"seconds": 0},
    ]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ('1={"message": ', r"--kwargs '1=\{\"message\": ': the arguments are not valid JSON: Expecting value"),
        ('3={"message": "x"}', r"the job has no step 3: it has 2 step\(s\)"),
        ('examples.fail={"message": "x"}', r"no step calls 'examples.fail'; the steps are: 1 examples.echo, 2 "),
        # What it got, in JSON's words, not Python's (list, NoneType).
        ("1=[1]", r"the arguments must be a JSON object, got an array"),
        ("1=null", r"the arguments must be a JSON object, got null$"),
        ("1=false", r"the arguments must be a JSON object, got false$"),
        ("1=2.5", r"the arguments must be a JSON object, got a number$"),
        ('1="x"', r"the arguments must be a JSON object, got a string$"),
        # Only ASCII digits number a step: others are read as a function's name, which no step calls.
        ("²={}", r"no step calls '²'; the steps are: 1 examples.echo"),
        ("٢={}", r"no step calls '٢'; the steps are: 1 examples.echo"),
        ('{"message": "x"}', r"expected STEP=JSON"),
        (
            '1={"text": "x"}',
            r"step 1 \(examples.echo\): arguments do not fit examples.echo\(message: str\) -> str: missing",
        ),
        (
            '2={"seconds": "soon", "x": 1}',
            r"step 2 \(examples.sleep\): arguments do not fit examples.sleep.*unexpected keyword argument 'x'",
        ),
    ],
)
def test_run_job_refuses_bad_kwargs_with_exit_status_2_and_runs_nothing(make_job, option, message):
    job = make_job(steps=TWO_STEPS)
    with pytest.raises(CommandError, match=message) as caught:
        call_command("run_job", str(job.pk), "--kwargs", option)
    assert caught.value.returncode == 2
    assert not JobRun.objects.exists()


def test_a_function_called_by_two_steps_must_be_named_by_number(make_job):
    job = make_job(steps='examples.echo {"message": "a"}\nexamples.echo {"message": "b"}')
    with pytest.raises(CommandError, match=r"steps 1, 2 all call examples\.echo: give the step's number instead"):
        call_command("run_job", str(job.pk), "--kwargs", 'examples.echo={"message": "x"}')


def test_the_same_step_given_twice_is_refused_not_the_last_one_kept(make_job):
    job = make_job(steps=TWO_STEPS)
    options = ["--kwargs", '1={"message": "a"}', "--kwargs", 'examples.echo={"message": "b"}']
    with pytest.raises(CommandError, match=r"step 1 is given twice \(also by '1=\{\"message\": \"a\"\}'\)") as caught:
        call_command("run_job", str(job.pk), *options)
    assert caught.value.returncode == 2
    assert not JobRun.objects.exists()


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=st.text(min_size=1, max_size=12).filter(lambda text: "=" not in text))
def test_any_step_text_is_a_step_or_one_clear_refusal(make_job, step):
    job = make_job(steps=TWO_STEPS)
    try:
        call_command("run_job", str(job.pk), "--kwargs", f"{step}={{}}")
    except CommandError as exc:
        assert exc.returncode == 2
        message = str(exc)
        assert "invalid literal" not in message
        assert "\n" not in message and "\u202e" not in message
    else:
        # It named a step (its number in ASCII digits): that step ran with no arguments.
        assert step.strip().lstrip("0") in {"1", "2"}
    JobRun.objects.all().delete()
    job.delete()
