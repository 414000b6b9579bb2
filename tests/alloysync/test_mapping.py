import pytest

from alloysync.client import parse_item
from alloysync.fake_alloy import SAMPLE_CRON_ATTRIBUTE, SAMPLE_STEPS_ATTRIBUTE, TITLE_ATTRIBUTE
from alloysync.mapping import AttributeCodes, ItemInvalid, job_spec_from_item
from tests.alloysync.helpers import job_item

CRON_CODE = "'attributes_scheduledJobsCron_65f0c0ffee0000000000abcf'"
STEPS_CODE = "'attributes_scheduledJobsSteps_65f0c0ffee0000000000abd0'"
ZONE_CODE = "'attributes_scheduledJobsTimezone_65f0c0ffee0000000000abd1'"
CODES = AttributeCodes(
    title=TITLE_ATTRIBUTE,
    cron=SAMPLE_CRON_ATTRIBUTE,
    steps=SAMPLE_STEPS_ATTRIBUTE,
    timezone="attributes_scheduledJobsTimezone_65f0c0ffee0000000000abd1",
)


def spec_of(item, default_timezone="UTC"):
    return job_spec_from_item(parse_item(item), CODES, default_timezone=default_timezone)


def errors_of(item):
    with pytest.raises(ItemInvalid) as caught:
        spec_of(item)
    return caught.value.errors


def test_an_item_becomes_a_spec_with_its_title_cron_zone_and_steps():
    spec = spec_of(
        job_item(
            "Gullies", "30 2 * * 1-5", 'examples.echo {"message": "x"}\nexamples.sleep {"seconds": 1}', "Europe/London"
        )
    )
    assert (spec.name, spec.cron, spec.timezone) == ("Gullies", "30 2 * * 1-5", "Europe/London")
    assert spec.steps_json() == [
        {"function": "examples.echo", "kwargs": {"message": "x"}},
        {"function": "examples.sleep", "kwargs": {"seconds": 1}},
    ]


def test_steps_may_arrive_as_a_json_list_value():
    spec = spec_of(job_item(steps=[{"function": "examples.echo", "kwargs": {"message": "x"}}]))
    assert spec.steps_json() == [{"function": "examples.echo", "kwargs": {"message": "x"}}]


def test_missing_zone_uses_the_default_and_missing_title_uses_the_item_id():
    item = job_item(title=None, timezone=None)
    spec = spec_of(item, default_timezone="Europe/Dublin")
    assert spec.timezone == "Europe/Dublin"
    assert spec.name == item["itemId"]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            job_item(cron=None),
            [f"cron attribute {CRON_CODE} (ALLOY_CRON_ATTRIBUTE) has no value"],
        ),
        (job_item(cron="  "), ["(ALLOY_CRON_ATTRIBUTE) has no value"]),
        (
            job_item(cron=5),
            [f"cron attribute {CRON_CODE} holds a number, not text"],
        ),
        (
            job_item(steps=None),
            [f"steps attribute {STEPS_CODE} (ALLOY_STEPS_ATTRIBUTE) has no value"],
        ),
        (job_item(steps={"function": "x"}), ["holds an object, not text or a list"]),
        (
            job_item(timezone=True),
            [f"time zone attribute {ZONE_CODE} holds a boolean, not text"],
        ),
        (job_item(timezone="Europe/Atlantis"), ["time zone 'Europe/Atlantis' is not a known IANA zone"]),
        (job_item(cron="61 * * * *"), ["cron '61 * * * *': minute '61' is out of range: 61 is not in 0-59"]),
        (job_item(cron="0 0 31 2 *"), ["never fires"]),
        (job_item(cron="0 0 1 * mon"), ["restricts both day-of-month '1' and day-of-week 'mon'"]),
        (
            job_item(steps="reports.build_gully_reprt"),
            ["step 1: function 'reports.build_gully_reprt' is not registered"],
        ),
        (
            job_item(steps='examples.echo {"message": "x"}\nexamples.ech {"message": "y"}'),
            ["step 2: function 'examples.ech' is not registered; did you mean examples.echo?"],
        ),
        (job_item(steps='examples.echo {"message": 1,}'), ["step 1 (examples.echo): arguments are not valid JSON"]),
        (
            job_item(steps='examples.sleep {"minutes": 5}'),
            ["step 1: arguments do not fit examples.sleep(seconds: float) -> float"],
        ),
        (job_item(steps="os.system"), ["step 1: function 'os.system' is not registered"]),
    ],
)
def test_bad_items_are_refused_with_precise_errors(item, expected):
    text = "; ".join(errors_of(item))
    for message in expected:
        assert message in text


def test_every_problem_of_an_item_is_reported_at_once():
    errors = errors_of(job_item(cron=None, steps=None))
    assert len(errors) == 2


def test_an_invalid_item_keeps_its_id_and_title_for_the_report():
    item = job_item("Broken thing", cron="nope")
    with pytest.raises(ItemInvalid) as caught:
        spec_of(item)
    assert (caught.value.item_id, caught.value.title) == (item["itemId"], "Broken thing")


def test_a_2mb_attribute_and_non_ascii_text_are_handled():
    spec = spec_of(job_item("Réseau d'égouts — Zürich ✓", steps=f'examples.echo {{"message": "{"é" * 1_000_000}"}}'))
    assert spec.name == "Réseau d'égouts — Zürich ✓"
    assert len(spec.steps[0].kwargs["message"]) == 1_000_000
