"""Cron maths benchmark: next_fire and latest_fire over a corpus of expressions, zones and instants.

The corpus is the reference test's: 22 expressions (fixed times, wildcards, steps, ranges, lists,
macros) in one zone per distinct set of offset changes in 2026-2030 (every IANA zone that changes,
30 patterns) plus UTC, each asked at random instants in 2026-2030 and around every change. It prints
the median, 99th percentile and worst time per call with the zones' changes already cached (as in a
running beat), the worst first call per zone (cache cold), and cronsim's time for the same next-fire
calls as the reference. Aim (issue 10): median under 50 µs, worst under 5 ms.

    python bench/cron_bench.py [--instants 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cronsim import CronSim

from scheduler.cron import expand_macro, latest_fire, next_fire
from scheduler.cron import zones as cron_zones
from tests.scheduler.cron.test_against_reference import CORPUS, zones_by_changes

FIRST, LAST = datetime(2026, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)


def instants(zone: str, count: int, rng: random.Random) -> list[datetime]:
    span = (LAST - FIRST).total_seconds()
    moments = [FIRST + timedelta(seconds=rng.uniform(0, span)) for _ in range(count)]
    for year in range(FIRST.year, LAST.year):
        for change in cron_zones.changes_in_year(zone, year):
            at = cron_zones.real_datetime(change.at)
            moments += [at + timedelta(minutes=offset) for offset in (-61, -1, 0, 1, 29, 59, 61)]
    return moments


def timed_calls(call: Callable[[str, str, datetime], object], cases: list[tuple[str, str, datetime]]) -> list[float]:
    times = []
    for expression, zone, moment in cases:
        started = time.perf_counter()
        call(expression, zone, moment)
        times.append(time.perf_counter() - started)
    return times


def cronsim_next(expression: str, zone: str, moment: datetime) -> object:
    return next(CronSim(expand_macro(expression), moment.astimezone(zoneinfo.ZoneInfo(zone))))


def describe(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[int(len(ordered) * 0.99)]
    return (
        f"{name:<34} median {statistics.median(ordered) * 1e6:7.1f} µs   p99 {p99 * 1e6:7.1f} µs   "
        f"worst {ordered[-1] * 1e3:6.2f} ms"
    )


def cold_worst(zones: list[str]) -> float:
    """The slowest first call per zone, with nothing cached: a beat's first look at each zone."""
    worst = 0.0
    for zone in zones:
        cron_zones.changes_in_year.cache_clear()
        started = time.perf_counter()
        next_fire("30 1 * * *", zone, datetime(2028, 6, 1, tzinfo=UTC))
        worst = max(worst, time.perf_counter() - started)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instants", type=int, default=20, help="random instants per expression and zone")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    zones = ["UTC", *(zones[0] for zones in zones_by_changes().values())]
    cases = [
        (expression, zone, moment)
        for zone in zones
        for expression in CORPUS
        for moment in instants(zone, args.instants, rng)
    ]
    print(f"{len(cases)} calls each: {len(CORPUS)} expressions, {len(zones)} zones, 2026-2030")
    ours_next = timed_calls(next_fire, cases)
    ours_latest = timed_calls(latest_fire, cases)
    theirs = timed_calls(cronsim_next, cases[: len(cases) // 4])  # cronsim hangs on some latest calls
    print(describe("next_fire", ours_next))
    print(describe("latest_fire", ours_latest))
    print(describe("cronsim next (reference, 1/4)", theirs))
    ratio = statistics.median(theirs) / statistics.median(ours_next)
    print(f"median next_fire is {ratio:.1f}x cronsim's (higher is faster)")
    print(f"worst first call for a zone, nothing cached: {cold_worst(zones) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
