import pytest

from scheduler.jobspec import JobSpecError, Step, job_spec_build, parse_steps, steps_as_text


def test_steps_text_one_function_a_line_with_optional_json_kwargs():
    text = """
    # build, then tell someone
    examples.echo {"message": "built"}

    examples.sleep {"seconds": 0}
    examples.echo {"message": "sent"}
    """
    assert parse_steps(text) == [
        Step("examples.echo", {"message": "built"}),
        Step("examples.sleep", {"seconds": 0}),
        Step("examples.echo", {"message": "sent"}),
    ]


def test_steps_as_a_json_list_are_accepted_as_text_or_data():
    data = [
        {"function": "examples.echo", "kwargs": {"message": "a"}},
        {"function": "examples.sleep", "kwargs": {"seconds": 1}},
    ]
    expected = [Step("examples.echo", {"message": "a"}), Step("examples.sleep", {"seconds": 1})]
    assert parse_steps(data) == expected
    assert (
        parse_steps(
            '[{"function": "examples.echo", "kwargs": {"message": "a"}}, '
            '{"function": "examples.sleep", "kwargs": {"seconds": 1}}]'
        )
        == expected
    )


@pytest.mark.parametrize(
    ("steps", "messages"),
    [
        ("", ["steps are empty: at least one function is required"]),
        ("# only a comment\n\n", ["steps are empty"]),
        ("examples.echo {bad json", ["step 1 (examples.echo): arguments are not valid JSON"]),
        ('examples.echo ["x"]', ["step 1 (examples.echo): arguments must be a JSON object, got list"]),
        ("reports.nope", ["step 1: function 'reports.nope' is not registered"]),
        (
            'examples.echo {"message": "a"}\nexamples.ech',
            ["step 2: function 'examples.ech' is not registered; did you mean examples.echo?"],
        ),
        (
            'examples.echo {"msg": "a"}',
            ["step 1: arguments do not fit examples.echo(message: str) -> str: missing a required argument: 'message'"],
        ),
        (
            'examples.echo {"message": "a", "extra": 1}',
            ["step 1: arguments do not fit", "unexpected keyword argument 'extra'"],
        ),
        ("examples.echo", ["step 1: arguments do not fit examples.echo"]),
        ("os.system('rm -rf /')", ['step 1: "os.system(\'rm" is not a function name']),
        ("import os", ["step 1 (import): arguments are not valid JSON"]),
        ('[{"function": "examples.echo"}, "oops"]', ["step 2: expected an object like"]),
        ('[{"function": "examples.echo", "kwargs": {"message": "a"}, "when": 1}]', ["step 1: unknown keys when"]),
        ("[not json", ["steps look like a JSON list but are not valid JSON"]),
        (42, ["steps must be text or a JSON list, got int"]),
    ],
)
def test_bad_steps_are_refused_naming_the_step_and_the_problem(steps, messages):
    with pytest.raises(JobSpecError) as caught:
        parse_steps(steps)
    text = str(caught.value)
    for message in messages:
        assert message in text


def test_every_bad_step_is_reported_not_just_the_first():
    with pytest.raises(JobSpecError) as caught:
        parse_steps('nope.one\nexamples.echo {"message": "ok"}\nnope.three')
    assert [e.split(":")[0] for e in caught.value.errors] == ["step 1", "step 3"]


def test_job_spec_collects_every_problem_at_once():
    with pytest.raises(JobSpecError) as caught:
        job_spec_build(name="", cron="61 * * * *", timezone="Mars/Olympus", steps="nope.fn")
    errors = caught.value.errors
    assert errors[0] == "name is empty"
    assert "minute '61' is out of range" in errors[1]
    assert errors[2] == "time zone 'Mars/Olympus' is not a known IANA zone (e.g. 'Europe/London', 'UTC')"
    assert errors[3].startswith("step 1: function 'nope.fn' is not registered")


def test_a_valid_spec_carries_the_celery_fields_and_json_steps():
    spec = job_spec_build(
        name=" Gullies ", cron="0 9 * * 1-5", timezone="Europe/London", steps='examples.echo {"message": "x"}'
    )
    assert spec.name == "Gullies"
    assert spec.crontab.day_of_week == "1-5"
    assert spec.steps_json() == [{"function": "examples.echo", "kwargs": {"message": "x"}}]
    assert steps_as_text(spec.steps_json()) == 'examples.echo {"message": "x"}'


def test_a_definition_bigger_than_a_job_may_hold_is_refused_with_its_size():
    steps = [{"function": "examples.echo", "kwargs": {"message": "Ω" * (2 * 1024 * 1024)}}]  # 4 MiB of UTF-8
    with pytest.raises(JobSpecError, match=r"the steps take 4,194,3\d\d bytes as JSON, more than the 4,194,304"):
        job_spec_build(name="big", cron="@daily", timezone="UTC", steps=steps)


def test_a_spec_changed_with_replace_gets_its_own_fingerprint():
    import dataclasses

    spec = job_spec_build(name="a", cron="@daily", timezone="UTC", steps='examples.echo {"message": "x"}')
    renamed = dataclasses.replace(spec, name="b")
    assert renamed.digest() != spec.digest()
    assert renamed.digest() == job_spec_build(name="b", cron="@daily", timezone="UTC", steps=spec.steps_json()).digest()
