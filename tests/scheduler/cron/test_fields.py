"""Cron expressions read and checked: what is accepted and refused, with messages naming the field."""

import pytest

from scheduler.cron import CronError, CrontabFields, describe_cron, parse_cron


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 * * * *", CrontabFields("*/15", "*", "*", "*", "*")),
        ("30 2 * * *", CrontabFields("30", "2", "*", "*", "*")),
        ("0 9 * * mon-fri", CrontabFields("0", "9", "*", "*", "mon-fri")),
        ("0 0 1 jan,jul *", CrontabFields("0", "0", "1", "jan,jul", "*")),
        ("0 0 * * 7", CrontabFields("0", "0", "*", "*", "0")),  # cron's Sunday-as-7
        ("0 9 * * 5-7", CrontabFields("0", "9", "*", "*", "0,5,6")),
        ("0 8-18/2 * * *", CrontabFields("0", "8-18/2", "*", "*", "*")),
        ("0 0 29 2 *", CrontabFields("0", "0", "29", "2", "*")),  # fires in leap years
        ("0 12 * JUL *", CrontabFields("0", "12", "*", "jul", "*")),
    ],
)
def test_it_accepts_standard_cron_and_stores_what_celery_reads_the_same_way(expression, expected):
    assert parse_cron(expression) == expected


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", CrontabFields("0", "*", "*", "*", "*")),
        ("@daily", CrontabFields("0", "0", "*", "*", "*")),
        ("@midnight", CrontabFields("0", "0", "*", "*", "*")),
        ("@weekly", CrontabFields("0", "0", "*", "*", "0")),
        ("@monthly", CrontabFields("0", "0", "1", "*", "*")),
        ("@yearly", CrontabFields("0", "0", "1", "1", "*")),
        ("@annually", CrontabFields("0", "0", "1", "1", "*")),
        ("@DAILY", CrontabFields("0", "0", "*", "*", "*")),
    ],
)
def test_it_expands_macros(macro, expected):
    assert parse_cron(macro) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 3"),
        ("* * * * * *", "got 6"),
        ("", "cron is empty"),
        ("61 * * * *", "minute '61' is out of range: 61 is not in 0-59"),
        ("* 24 * * *", "hour '24' is out of range: 24 is not in 0-23"),
        ("0 0 0 * *", "day-of-month '0' is out of range: 0 is not in 1-31"),
        ("0 0 * 13 *", "month '13' is out of range: 13 is not in 1-12"),
        ("0 0 * * 8", "day-of-week '8' is out of range: 8 is not in 0-7"),
        ("0 0 * foo *", "month 'foo' has an unknown value 'foo': use 1-12 or jan-dec"),
        ("0 0 * * funday", "day-of-week 'funday' has an unknown value 'funday'"),
        ("*/0 * * * *", "minute '*/0' has a step of 0"),
        ("30-10 * * * *", "minute '30-10' has a backwards range 30-10"),
        ("0 0 L * *", "day-of-month 'L' uses a non-standard extension"),
        ("0 0 * * 1#2", "day-of-week '1#2' uses a non-standard extension"),
        ("0 0 ? * *", "day-of-month '?' has an unknown value '?'"),
        ("@reboot", "unknown macro '@reboot'"),
        ("0 0 31 2 *", "never fires: day-of-month '31' does not occur in month '2'"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 1 * mon", "restricts both day-of-month '1' and day-of-week 'mon'"),
        ("0 0 1-7 * 1-5", "restricts both day-of-month '1-7' and day-of-week '1-5'"),
    ],
)
def test_it_refuses_bad_cron_naming_the_field_and_value(expression, message):
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    assert message in str(caught.value)
    if expression:
        assert repr(expression) in str(caught.value)


def test_a_star_step_day_field_counts_as_unrestricted_like_debian_cron():
    # cron only ORs the day fields when neither starts with '*'; '*/2' with a weekday is an AND.
    assert parse_cron("0 0 */2 * mon").day_of_week == "mon"


def test_it_describes_cron_in_plain_english():
    assert describe_cron("30 2 * * *") == "At 02:30"
    assert describe_cron("@hourly") == "Every hour"
    assert describe_cron("nonsense") == "(cannot describe)"


@pytest.mark.parametrize(
    ("expression", "stored_minute"),
    [("5-5/2 * * * *", "5-5/2"), ("5/20 * * * *", "5,25,45"), ("0-10/5 * * * *", "0-10/5")],
)
def test_ranges_with_steps_are_read_as_cron_reads_them(expression, stored_minute):
    # A one-value range with a step is that one value (cronsim read "5-5/2" as every other minute from 5);
    # Celery cannot read "5/20", so beat is given the explicit list.
    assert parse_cron(expression).minute == stored_minute


@pytest.mark.parametrize("field", ["\u0665", "1-\u0665", "*/\u0665"])  # ARABIC-INDIC DIGIT FIVE
def test_digits_of_other_scripts_are_refused(field):
    with pytest.raises(CronError, match="minute"):
        parse_cron(f"{field} * * * *")


@pytest.mark.parametrize(
    "expression",
    [
        "\u00b2 * * * *",  # SUPERSCRIPT TWO: str.isdigit() says yes, int() says no
        "0 0 \u00b9 * *",
        "*/\u00b2 * * * *",
        "1-\u00b2 * * * *",
        "\u2460 * * * *",  # CIRCLED DIGIT ONE
        "1" * 4301 + " * * * *",  # past Python's limit for int() of a string
        "*/" + "1" * 5000 + " * * * *",
    ],
)
def test_odd_digits_and_huge_numbers_are_a_clear_error_not_a_crash(expression):
    with pytest.raises(CronError, match=r"minute|day-of-month") as caught:
        parse_cron(expression)
    assert len(str(caught.value)) < len(expression) + 200


@pytest.mark.parametrize("expression", ["0\u00a00 * * *", "0 0\n* * *", "0 0 * *\u2003*", "0\u20280 * * *"])
def test_only_spaces_and_tabs_separate_fields(expression):
    with pytest.raises(CronError):
        parse_cron(expression)
    assert parse_cron("0\t0 *  * *") == CrontabFields("0", "0", "*", "*", "*")


@pytest.mark.parametrize("expression", ["0 0 */31 2 mon", "0 0 */29 2 mon", "0 0 29 2 */7"])
def test_an_expression_that_fires_rarely_is_not_called_never(expression):
    # 1 February on a Monday (2010, 2016, ...); 29 February on a Sunday (2004, 2032, ...).
    assert parse_cron(expression)
