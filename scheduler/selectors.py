"""Reads that more than one caller needs."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from scheduler.jobspec import JobSpec, definition_digest
from scheduler.models import Job
from scheduler.plain_text import one_line


class JobNotFound(LookupError):
    pass


#: Characters of a job's name shown in a message naming candidates or close matches.
NAME_SHOWN = 80


def _shown(name: str) -> str:
    # Names are printed to terminals: one line, no control or bidi characters, bounded.
    return one_line(name, NAME_SHOWN)


def job_find(reference: str) -> Job:
    """The job named by an id, an Alloy item id (external id) or an exact name.

    Raises JobNotFound with close names, or with the candidates when a name is ambiguous, and for a
    blank reference (every local job has a blank external id: it would pick one of them).
    """
    reference = reference.strip()
    if not reference:
        raise JobNotFound("no job given: give the job's id, its Alloy item id or its exact name")
    query = Q(external_id=reference) | Q(name=reference)
    if reference.isascii() and reference.isdigit():  # "²".isdigit() too, which int() refuses
        query |= Q(pk=int(reference))
    matches = list(Job.objects.select_related("periodic_task").filter(query).order_by("pk")[:10])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        listed = ", ".join(f"{job.pk} ({_shown(job.name)})" for job in matches)
        raise JobNotFound(f"{_shown(reference)!r} matches several jobs: {listed}; give the job's id instead")
    names = Job.objects.values_list("name", flat=True)
    close = difflib.get_close_matches(reference, list(names.iterator()), n=3)
    hint = f"; did you mean {', '.join(repr(_shown(name)) for name in close)}?" if close else ""
    raise JobNotFound(f"no job has id, Alloy item id or name {_shown(reference)!r}{hint}")


@dataclass(frozen=True, slots=True)
class JobState:
    """What a source's sync compares an incoming definition with: a fingerprint, not the definition.

    Kept small on purpose: a sync holds one per job of its source while it reads.
    """

    id: int
    digest: bytes
    sync_error: str
    scheduled: bool

    def matches(self, spec: JobSpec) -> bool:
        """True if the spec would change nothing: same definition, scheduled, no error showing."""
        return self.scheduled and not self.sync_error and self.digest == spec.digest()


def job_states_for_source(source: str, external_ids: Collection[str] | None = None) -> dict[str, JobState]:
    """Every job of ``source`` keyed by external id, in one streamed query; only those of
    ``external_ids`` if given (a partial read needs no more)."""
    rows = Job.objects.filter(source=source).exclude(external_id="")
    if external_ids is not None:
        return {
            external_id: state
            for chunk in _chunks(sorted(external_ids), 5000)
            for external_id, state in _states(rows.filter(external_id__in=chunk)).items()
        }
    return _states(rows)


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    # SQLite caps the parameters of one statement; PostgreSQL plans long IN lists poorly.
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _states(rows: QuerySet[Job]) -> dict[str, JobState]:
    fields = ("pk", "external_id", "name", "cron", "timezone", "steps", "time_limit", "sync_error", "periodic_task_id")
    states = {}
    for pk, external_id, name, cron, zone, steps, limit, sync_error, task_id in rows.values_list(*fields).iterator(
        2000
    ):
        digest = definition_digest(name, cron, zone, steps, limit)
        states[external_id] = JobState(pk, digest, sync_error, task_id is not None)
    return states
