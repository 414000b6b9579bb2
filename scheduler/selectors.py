"""Reads that more than one caller needs."""

from __future__ import annotations

import difflib

from django.db.models import Q

from scheduler.models import Job


class JobNotFound(LookupError):
    pass


def job_find(reference: str) -> Job:
    """The job named by an id, an Alloy item id (external id) or an exact name.

    Raises JobNotFound with close names, or with the candidates when a name is ambiguous.
    """
    reference = reference.strip()
    query = Q(external_id=reference) | Q(name=reference)
    if reference.isdigit():
        query |= Q(pk=int(reference))
    matches = list(Job.objects.select_related("periodic_task").filter(query).order_by("pk")[:10])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        listed = ", ".join(f"{job.pk} ({job.name})" for job in matches)
        raise JobNotFound(f"{reference!r} matches several jobs: {listed}; give the job's id instead")
    names = Job.objects.values_list("name", flat=True)
    close = difflib.get_close_matches(reference, list(names.iterator()), n=3)
    hint = f"; did you mean {', '.join(repr(name) for name in close)}?" if close else ""
    raise JobNotFound(f"no job has id, Alloy item id or name {reference!r}{hint}")
