"""What a read of Alloy means for the jobs: each item compared with its job, the differences kept.

Nothing here reads Alloy or writes a job; ``alloysync.sync`` does both around it. Only a complete
read yields removals: absence means removal only once every item has been seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from alloysync.client import AlloyItem
from alloysync.mapping import AttributeCodes, ItemInvalid, job_spec_from_item
from scheduler.changes import JobChanges
from scheduler.changes_bisect import AppliedChanges
from scheduler.models import Job
from scheduler.selectors import JobState


class SyncConfigError(Exception):
    """A required ALLOY_* setting is missing or wrong; the message names it."""


@dataclass(frozen=True)
class ItemRules:
    """How an item is read as a job: which attributes hold what, and the zone when it names none."""

    codes: AttributeCodes
    default_timezone: str


@dataclass
class SyncPlan:
    """What a complete read of Alloy means for the jobs: the differences only."""

    changes: JobChanges = field(default_factory=lambda: JobChanges(source=Job.Source.ALLOY))
    items_read: int = 0
    unchanged: int = 0
    restored: set[int] = field(default_factory=set)  # ids of removed jobs whose items are back
    live_jobs: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # external id -> job id, absent from the read
    carried: Counter[str] = field(default_factory=Counter)  # attribute code -> items that carry it
    notes: list[str] = field(default_factory=list)  # what the record's message should say
    left: list[str] = field(default_factory=list)  # item ids read that are no longer jobs (a partial read)

    @property
    def created(self) -> int:
        return len(self.changes.create) + len(self.restored)

    @property
    def updated(self) -> int:
        return len(self.changes.update) - len(self.restored)

    def removes_too_many(self, fraction: float) -> bool:
        return len(self.changes.remove) > fraction * self.live_jobs


def sync_plan_fill(plan: SyncPlan, items: Iterable[AlloyItem], states: dict[str, JobState], rules: ItemRules) -> None:
    """Fill ``plan`` from ``items``; if reading raises, ``plan`` says how far it got, removes nothing.

    Consumes ``states``: each item takes its job's state out, so what is left at the end is the jobs
    whose items were not read, and memory does not hold a second set of every id seen.
    """
    plan.live_jobs = sum(1 for state in states.values() if state.scheduled)
    for item in items:
        plan.items_read += 1
        plan.carried.update(item.attributes.keys())
        _plan_item(plan, item, states.pop(item.item_id, None), rules)
    # Only now, after a complete read, can absence mean removal.
    plan.missing = {external_id: state.id for external_id, state in states.items() if state.scheduled}
    plan.changes.remove = list(plan.missing.values())


def sync_plan_fill_changed(
    plan: SyncPlan,
    items: Iterable[AlloyItem | str],
    states: dict[str, JobState],
    rules: ItemRules,
    is_job: Callable[[AlloyItem], bool],
) -> None:
    """Fill ``plan`` from a partial read: only the items edited since a time, or named by a webhook.

    ``items`` holds the items read, and as bare ids the items Alloy says no longer exist. Absence from
    a partial read means nothing, so only what was read can remove a job: an item that exists but is
    no longer a job (``is_job`` false: unflagged, archived, another design) or that is gone. ``states``
    need hold only the jobs of the items read.
    """
    plan.live_jobs = live_alloy_jobs()
    for entry in items:
        item_id = entry if isinstance(entry, str) else entry.item_id
        state = states.get(item_id)
        plan.items_read += not isinstance(entry, str)
        if isinstance(entry, str) or not is_job(entry):
            plan.left.append(item_id)
            if state is not None and state.scheduled:
                plan.changes.remove.append(state.id)
            continue
        _plan_item(plan, entry, state, rules)


def live_alloy_jobs() -> int:
    """Alloy jobs that have a schedule (paused ones included): what the mass-removal valve compares with."""
    return Job.objects.filter(source=Job.Source.ALLOY, periodic_task__isnull=False).exclude(external_id="").count()


def sync_plan_check_attributes(plan: SyncPlan, rules: ItemRules, design: str) -> None:
    """Raise SyncConfigError if no item read carries the title, cron or steps attribute code.

    Alloy leaves out an attribute an item has no value for, so a code that no item of the design
    carries is all but certainly misspelt: read as it is, every item would be invalid and the sync
    would call that success. The zone attribute is optional on every item, so a design whose items
    all use the default zone is normal: that gets a note in the record instead of a failure.
    """
    if not plan.items_read:
        return
    codes = rules.codes
    required = {
        "ALLOY_TITLE_ATTRIBUTE": codes.title,
        "ALLOY_CRON_ATTRIBUTE": codes.cron,
        "ALLOY_STEPS_ATTRIBUTE": codes.steps,
    }
    unseen = [f"{name}={code!r}" for name, code in required.items() if not plan.carried[code]]
    if unseen:
        raise SyncConfigError(
            f"none of the {plan.items_read} items of design {design!r} carries {' or '.join(unseen)}: check the "
            "attribute code against the design in Alloy (codes look like attributes_jobsCron); nothing was changed"
        )
    if codes.timezone and not plan.carried[codes.timezone]:
        plan.notes.append(
            f"no item carries ALLOY_TIMEZONE_ATTRIBUTE={codes.timezone!r}, so every job uses JOB_DEFAULT_TIMEZONE="
            f"{rules.default_timezone!r}; if items do name zones, check that attribute code"
        )


def sync_plan_settle(plan: SyncPlan, outcome: AppliedChanges) -> None:
    """Make the plan say what was written: ``outcome``'s applied changes, not what was decided."""
    plan.changes = outcome.applied
    plan.restored &= {job_id for job_id, _ in outcome.applied.update}
    if outcome.vanished:
        plan.notes.append(
            f"{len(outcome.vanished)} job(s) deleted while this sync ran were left alone "
            f"(ids {', '.join(map(str, outcome.vanished[:20]))}); the next sync creates them again"
        )


def sync_plan_confirm_removals(plan: SyncPlan, items: Iterable[AlloyItem]) -> None:
    """Keep only removals whose item is missing from a second complete read too.

    Alloy pages by offset: an item deleted while the first read was under way shifts the items after
    it back one place, so one of them can fall between two pages and look removed. The same item is
    all but never skipped twice, so absence from two reads is taken as real.
    """
    still_there = {item.item_id for item in items}
    plan.missing = {
        external_id: job_id for external_id, job_id in plan.missing.items() if external_id not in still_there
    }
    plan.changes.remove = list(plan.missing.values())


def _plan_item(plan: SyncPlan, item: AlloyItem, state: JobState | None, rules: ItemRules) -> None:
    try:
        spec = job_spec_from_item(item, rules.codes, default_timezone=rules.default_timezone)
    except ItemInvalid as invalid:
        message = str(invalid)
        plan.errors.append({"item_id": item.item_id, "title": invalid.title, "message": message})
        # The job, if any, keeps its last valid definition and shows the error until the item is fixed.
        if state is not None and state.sync_error != message:
            plan.changes.invalid.append((state.id, message))
        return
    if state is None:
        plan.changes.create.append((item.item_id, spec))
    elif state.matches(spec):
        plan.unchanged += 1
    else:
        plan.changes.update.append((state.id, spec))
        if not state.scheduled:
            plan.restored.add(state.id)
