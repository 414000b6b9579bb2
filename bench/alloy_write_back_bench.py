"""Write-back of many runs finishing in the same minute, under ALLOY_WRITE_RATE.

N Alloy jobs (their crons fire once a year, so their next run stays put during the benchmark) each
finish a run through the runner (``scheduler.runner.job_run_execute``, the signal marks the item);
then write-back passes (``alloysync.write_back.write_back_pass``, in this process) run every
``interval`` seconds, as beat sends the task. After the first pass a tenth of the jobs finish a
second run, so some items change again after they were written and some before. It counts the PUTs
the fake Alloy applied in every sliding 60 s window (must be at most the rate), checks every item
ends showing its job's latest state, and times the drain.

The fake's own limit is raised above the write rate for this part (at 100 a minute it, not
ALLOY_WRITE_RATE, would bind a rate of 600); with the default rate of 30 Alloy's limit never binds.

Imported by ``alloy_both_ways_bench.py`` after ``django.setup()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alloy_bench_fake import configure, rate_limited_total, start_fake
from django.conf import settings
from django.utils import timezone

from alloysync import fake_alloy
from alloysync.fake_alloy.samples import attribute_value
from alloysync.models import ItemEdit, ItemState, SyncRun
from alloysync.sync import alloy_sync
from alloysync.write_back import write_back_pass
from alloysync.write_back_state import WriteBackCodes, desired_values, item_status, values_differing
from scheduler.models import Job, JobRun
from scheduler.runner import job_run_execute

CODES = WriteBackCodes(
    status="attributes_scheduledJobsStatus_bench",
    message="attributes_scheduledJobsMessage_bench",
    last_run="attributes_scheduledJobsLastRun_bench",
    next_run="attributes_scheduledJobsNextRun_bench",
)
YEARLY = ["0 0 1 1 *"]
RATE_WINDOW_SECONDS = 60.0
REAL_DEFAULT_RATE = 30


def configure_codes(codes: WriteBackCodes, rate: int) -> None:
    settings.ALLOY_STATUS_ATTRIBUTE = codes.status
    settings.ALLOY_MESSAGE_ATTRIBUTE = codes.message
    settings.ALLOY_LAST_RUN_ATTRIBUTE = codes.last_run
    settings.ALLOY_NEXT_RUN_ATTRIBUTE = codes.next_run
    settings.ALLOY_RUN_NOW_ATTRIBUTE = codes.run_now
    settings.ALLOY_WRITE_RATE = rate


def max_in_window(moments: list[datetime], seconds: float = RATE_WINDOW_SECONDS) -> int:
    """The most of ``moments`` in any window of ``seconds`` (sliding, start inclusive)."""
    ordered = sorted(moments)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while (moment - ordered[start]).total_seconds() >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def run_jobs(jobs: list[Job]) -> float:
    """Finish one run of each job through the runner; the seconds it took."""
    started = time.monotonic()
    for job in jobs:
        job_run_execute(job=job, trigger=JobRun.Trigger.COMMAND)
    return time.monotonic() - started


def states_not_shown(server: fake_alloy.FakeAlloyServer, jobs: list[Job]) -> list[str]:
    """Items whose attributes in the fake differ from their job's latest state."""
    now = timezone.now()
    wrong = []
    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]).select_related("periodic_task"):
        last_run = (
            JobRun.objects.filter(job=job, status__in=[JobRun.Status.SUCCEEDED, JobRun.Status.FAILED])
            .exclude(finished_at=None)
            .order_by("-finished_at", "-pk")
            .first()
        )
        wanted = desired_values(
            CODES, item_status(job=job, refusal="", last_run=last_run, now=now), run_now_pending=False
        )
        item = server.get(job.external_id) or {}
        held: dict[str, Any] = {code: attribute_value(item, code) for code in CODES.all}
        if values_differing(CODES, wanted, held):
            wrong.append(job.external_id)
    return wrong


@dataclass
class WriteBackResult:
    jobs: int
    runs: int
    rate: int
    fake_limit: int
    run_seconds: float
    drain_seconds: float
    passes: int
    puts: int
    max_window: int
    refused: int
    not_shown: list[str]
    pending: int

    def problems(self) -> list[str]:
        found = []
        if self.max_window > self.rate:
            found.append(f"write-back sent {self.max_window} edits in 60 s, above ALLOY_WRITE_RATE={self.rate}")
        if self.not_shown:
            found.append(f"{len(self.not_shown)} items do not show their latest state (e.g. {self.not_shown[0]})")
        if self.pending:
            found.append(f"{self.pending} items still dirty after the drain")
        if self.refused:
            found.append(f"{self.refused} write-back requests answered 429")
        return found

    def report(self) -> None:
        print(
            f"\nwrite-back: {self.jobs:,d} jobs, {self.runs:,d} runs, ALLOY_WRITE_RATE={self.rate} "
            f"(the fake's limit raised to {self.fake_limit} a minute per endpoint)"
        )
        print(f"  runs finished through the runner in {self.run_seconds:.1f} s")
        print(
            f"  drained (last PUT) {self.drain_seconds:.1f} s after the runs, {self.passes} passes: "
            f"{self.puts:,d} PUTs applied, "
            f"most in any 60 s window {self.max_window} (limit {self.rate}); 429s {self.refused}"
        )
        print(f"  items not showing their latest state: {len(self.not_shown)}; still dirty: {self.pending}")
        minutes = self.puts / REAL_DEFAULT_RATE
        rate = REAL_DEFAULT_RATE
        print(f"  at the default ALLOY_WRITE_RATE={rate}: {self.puts:,d} edits drain in about {minutes:.0f} min")


def write_back_bench(count: int, rate: int, rate_limit: int, interval: float, page_size: int) -> WriteBackResult:
    """Create ``count`` jobs, finish a run of each, drain write-back at ``rate``; what happened."""
    fake_limit = max(rate_limit, 2 * rate)
    server = start_fake(count, fake_limit, crons=YEARLY)
    try:
        configure(server.url, page_size)
        configure_codes(WriteBackCodes(), rate)  # write-back off for the first read: only the runs mark items
        run = alloy_sync(trigger=SyncRun.Trigger.COMMAND, mode=SyncRun.Mode.FULL).run
        if run.status != SyncRun.Status.SUCCEEDED:
            raise SystemExit(f"write-back bench: sync {run.status}: {run.message}")
        item_ids = [item["itemId"] for item in server.items]
        jobs = list(Job.objects.filter(source=Job.Source.ALLOY, external_id__in=item_ids, removed_at=None))
        ItemState.objects.all().delete()
        ItemEdit.objects.all().delete()
        configure_codes(CODES, rate)
        server.clear_requests()
        refused = rate_limited_total(server)
        edits_before = len(server.edits)
        run_seconds = run_jobs(jobs)
        started, began, passes, second_round = time.monotonic(), timezone.now(), 0, jobs[::10]
        deadline = started + (count + len(second_round)) * 60 / rate + 180
        while time.monotonic() < deadline:
            result = write_back_pass()
            passes += 1
            if second_round:
                run_jobs(second_round)  # later runs of jobs some of which were just written
                second_round = []
                continue
            if result.pending == 0 and not ItemState.objects.exclude(dirty_since=None).exists():
                break
            time.sleep(interval)
        edits = server.edits[edits_before:]
        drain = (max(edit.at for edit in edits) - began).total_seconds() if edits else 0.0
        return WriteBackResult(
            jobs=len(jobs),
            runs=len(jobs) + len(jobs[::10]),
            rate=rate,
            fake_limit=fake_limit,
            run_seconds=run_seconds,
            drain_seconds=drain,
            passes=passes,
            puts=len(edits),
            max_window=max_in_window([edit.at for edit in edits]),
            refused=rate_limited_total(server) - refused,
            not_shown=states_not_shown(server, jobs),
            pending=ItemState.objects.exclude(dirty_since=None).count(),
        )
    finally:
        server.stop()
