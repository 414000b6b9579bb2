"""next_fire and latest_fire against an independent replay of Debian cron's loop (reference.py).

Every zone in the IANA database whose offset changes between 2026 and 2030 is covered, through one
zone per distinct set of changes (zones that change at the same instants between the same offsets
fire alike): 30-minute and 2-hour shifts, negative DST, changes at midnight, and changes of standard
offset without DST. Hypothesis adds random expressions, zones and instants.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.cron import latest_fire, next_fire, zones
from tests.scheduler.cron import reference

FIRST_YEAR, LAST_YEAR = 2026, 2030
CORPUS = [
    # fixed times near the usual change hours, midnight, and a Sunday
    "30 1 * * *", "0 2 * * *", "15 3 * * *", "0 0 * * *", "30 0 * * 0", "45 23 * * 6", "0 12 1 * *",
    # wildcards and steps in the minute or hour field
    "* * * * *", "*/15 * * * *", "0 * * * *", "30 * * * *", "*/30 1 * * *", "*/30 0 * * 0", "0 */2 * * *",
    # ranges and lists that are not wildcards
    "0-59/20 2 * * *", "0,30 1-3 * * *", "5 0,1,2,3 * * mon-fri",
    # macros
    "@hourly", "@daily", "@weekly", "@monthly", "@yearly",
]  # fmt: skip
# Replay from this long before a window, so cron's virtual clock has settled (changes are < 3 h).
SETTLE = timedelta(hours=4)
WINDOW = timedelta(hours=3)


@functools.cache
def zones_by_changes() -> dict[tuple[zones.Change, ...], list[str]]:
    """Every IANA zone with offset changes in 2026-2030, grouped by those changes."""
    groups: dict[tuple[zones.Change, ...], list[str]] = {}
    for zone in sorted(zoneinfo.available_timezones()):
        changes = tuple(c for year in range(FIRST_YEAR, LAST_YEAR + 1) for c in zones.changes_in_year(zone, year))
        if changes:
            groups.setdefault(changes, []).append(zone)
    return groups


def representative_zones() -> list[str]:
    return [zones[0] for zones in zones_by_changes().values()]


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def replay(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The reference's fire times over [start - SETTLE, end + SETTLE)."""
    return reference.fire_times(reference.parse(expression), zone, minute(start - SETTLE), minute(end + SETTLE))


def check_around(
    expression: str, zone: str, start: datetime, end: datetime, points: list[datetime], fires: list[datetime]
) -> None:
    """At each point in [start, end), both functions agree with the reference's ``fires`` (see replay)."""
    for point in points:
        later = [fire for fire in fires if fire > point]
        got = next_fire(expression, zone, point)
        assert got > point
        if later:
            assert got == later[0], f"next_fire({expression!r}, {zone!r}, {point})"
        else:
            # The replay covered [minute(start - SETTLE), minute(end + SETTLE)): a fire at its end is past it.
            assert got >= minute(end + SETTLE), f"next_fire({expression!r}, {zone!r}, {point})"
        earlier = [fire for fire in fires if fire <= point]
        latest = latest_fire(expression, zone, point)
        if earlier:
            assert latest == earlier[-1], f"latest_fire({expression!r}, {zone!r}, {point})"
        else:
            assert latest is None or latest < minute(start - SETTLE), f"latest_fire({expression!r}, {zone!r}, {point})"


def points_around(change_at: datetime, fires: list[datetime]) -> list[datetime]:
    """The instants worth asking about: the change, every fire near it and a minute either side."""
    near = sorted((fire for fire in fires if abs(fire - change_at) <= WINDOW), key=lambda fire: abs(fire - change_at))
    near = near[:20]
    points = {change_at - WINDOW, change_at - timedelta(minutes=1), change_at, change_at + timedelta(seconds=30)}
    for fire in near:
        points |= {fire - timedelta(minutes=1), fire, fire + timedelta(seconds=59)}
    return sorted(points)


@pytest.mark.slow
@pytest.mark.parametrize("zone", representative_zones())
def test_every_change_2026_to_2030_matches_debian_cron(zone: str) -> None:
    changes = next(changes for changes, zones in zones_by_changes().items() if zones[0] == zone)
    # The zone data as the reference reads it agrees with the changes the product found.
    found = reference.transitions(
        zone, datetime(FIRST_YEAR, 1, 1, tzinfo=UTC), datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)
    )
    assert [zones.real_datetime(change.at) for change in changes] == found
    for change in changes:
        change_at = zones.real_datetime(change.at)
        for expression in CORPUS:
            start, end = change_at - WINDOW, change_at + WINDOW
            fires = replay(expression, zone, start, end)
            check_around(expression, zone, start, end, points_around(change_at, fires), fires)


def test_the_zones_covered_include_every_kind_of_change() -> None:
    shifts = {change.shift for changes in zones_by_changes() for change in changes}
    assert {-120, -60, -30, 30, 60, 120} <= shifts  # Troll's 2 hours, Lord Howe's 30 minutes
    covered = {zone for zones in zones_by_changes().values() for zone in zones}
    assert {
        "Europe/Dublin",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "America/Santiago",
        "Antarctica/Troll",
    } <= covered


# --- generated: random expressions, zones and instants -------------------------------------------

_ZONES = [
    "UTC", "Europe/London", "Europe/Dublin", "America/New_York", "America/Santiago", "America/Havana",
    "Australia/Lord_Howe", "Pacific/Chatham", "Antarctica/Troll", "Africa/Casablanca", "Asia/Kathmandu",
    "Pacific/Apia", "Asia/Tehran", "America/Asuncion", "Europe/Chisinau", "Asia/Gaza",
]  # fmt: skip


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        st.builds(lambda step: f"*/{step}", st.integers(1, high - low + 1)),
        value.map(str),
        st.builds(lambda a, b: f"{min(a, b)}-{max(a, b)}", value, value),
        st.builds(lambda a, b, step: f"{min(a, b)}-{max(a, b)}/{step}", value, value, st.integers(1, 10)),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda values: ",".join(map(str, values))),
    )


expressions = st.builds(
    lambda *fields: " ".join(fields),
    _field(0, 59),
    _field(0, 23),
    st.one_of(st.just("*"), _field(1, 28)),
    st.one_of(st.just("*"), _field(1, 12)),
    st.one_of(st.just("*"), _field(0, 6)),
)
instants = st.datetimes(
    # naive bounds are what hypothesis asks for; the values it draws are aware (UTC)
    min_value=datetime(FIRST_YEAR, 1, 1),  # noqa: DTZ001
    max_value=datetime(LAST_YEAR, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def near_changes(zone: str) -> st.SearchStrategy[datetime]:
    changes = [c for year in range(FIRST_YEAR, LAST_YEAR + 1) for c in zones.changes_in_year(zone, year)]
    if not changes:
        return instants
    return st.builds(
        lambda change, minutes: zones.real_datetime(change.at) + timedelta(minutes=minutes),
        st.sampled_from(changes),
        st.integers(-180, 180),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=expressions, zone=st.sampled_from(_ZONES), data=st.data())
def test_random_expressions_zones_and_instants_match_debian_cron(
    expression: str, zone: str, data: st.DataObject
) -> None:
    point = data.draw(st.one_of(instants, near_changes(zone)))
    start, end = point - timedelta(hours=24), point + timedelta(hours=24)
    check_around(expression, zone, start, end, [point], replay(expression, zone, start, end))


@pytest.mark.parametrize(
    ("expression", "zone", "point"),
    [
        # a change at exactly 1 January 00:00 UTC (it used to be filed under the year before)
        ("0 0 * * *", "Indian/Kerguelen", datetime(1949, 12, 31, 23, 58, tzinfo=UTC)),
        ("30 0 * * *", "Africa/Niamey", datetime(1959, 12, 31, 23, 58, tzinfo=UTC)),
        ("0 12 * * *", "Africa/Niamey", datetime(1959, 12, 31, 23, 58, tzinfo=UTC)),
        # a move back of one minute: cron waits for the wall minute to change, and runs nothing twice
        ("0 * * * *", "America/Merida", datetime(1922, 1, 1, 5, 59, tzinfo=UTC)),
        ("* * * * *", "Africa/Brazzaville", datetime(1911, 12, 31, 22, 0, tzinfo=UTC)),
    ],
)
def test_odd_historic_changes_match_debian_cron(expression: str, zone: str, point: datetime) -> None:
    start, end = point - timedelta(hours=6), point + timedelta(hours=6)
    fires = replay(expression, zone, start, end)
    points = sorted({point, *(fire for fire in fires if abs(fire - point) <= timedelta(hours=2))})
    check_around(expression, zone, start, end, points, fires)
