"""The last line of defence of a bulk write: should the database refuse it, write all the rest.

Values are checked before they reach the database (``scheduler.stored_values``); this is for a
refusal nobody foresaw. Without it, one bad row would stop every change of every sync until a
person found it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, transaction

from scheduler.changes import ChangeKind, JobChanges, jobs_apply_changes


@dataclass(frozen=True)
class RefusedChange:
    """One change the database refused: what it was, and the database's reason (its first line)."""

    kind: ChangeKind
    key: str | int  # the external id of a create; the job id otherwise
    reason: str


@dataclass
class AppliedChanges:
    """What ``jobs_apply_changes_or_bisect`` wrote, and what it could not."""

    applied: JobChanges
    refused: list[RefusedChange] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)  # jobs deleted while the sync read: left alone


logger = logging.getLogger(__name__)


@transaction.atomic
def jobs_apply_changes_or_bisect(changes: JobChanges) -> AppliedChanges:
    """Write ``changes`` in one transaction; if the database refuses the bulk write, write all but
    the changes it refuses, found by halving (about 2·log2(n) tries for each refused change).

    Only refusals of values (DataError, IntegrityError) are bisected; a lost connection (an
    OperationalError) is raised as it is, and the transaction rolls back whole.
    """
    outcome = AppliedChanges(applied=JobChanges(source=changes.source))
    _apply_or_bisect(changes, outcome)
    return outcome


def _apply_or_bisect(changes: JobChanges, outcome: AppliedChanges) -> None:
    if not changes:
        return
    try:
        with transaction.atomic():
            vanished = jobs_apply_changes(changes)
    except (DataError, IntegrityError) as exc:
        if len(changes) > 1:
            for half in changes.halves():
                _apply_or_bisect(half, outcome)
            return
        kind, key = _only_change(changes)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        logger.warning("the database refused to %s %s: %s", kind, key, reason)
        outcome.refused.append(RefusedChange(kind, key, reason))
        return
    outcome.vanished += vanished
    outcome.applied.create += changes.create
    outcome.applied.update += [(job_id, spec) for job_id, spec in changes.update if job_id not in vanished]
    outcome.applied.invalid += changes.invalid
    outcome.applied.remove += changes.remove


def _only_change(changes: JobChanges) -> tuple[ChangeKind, str | int]:
    if changes.create:
        return "create", changes.create[0][0]
    if changes.update:
        return "update", changes.update[0][0]
    if changes.invalid:
        return "invalid", changes.invalid[0][0]
    return "remove", changes.remove[0]
