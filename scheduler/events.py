"""Events other apps may follow without the engine knowing them.

``job_state_changed`` is sent with ``job_ids`` (a sorted list of Job primary keys) and ``sources`` (a
mapping of those ids to ``Job.source``, or None when the sender does not know them) whenever what a job
shows to the outside may have changed: a run finished or was abandoned, a lost run was reaped, the job
was paused or resumed. Receivers must be cheap (the runner sends it once per run, after the run is
recorded) and cannot break the sender: it is sent robustly, and Django logs a receiver that raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.dispatch import Signal

job_state_changed = Signal()


def job_state_changed_send(job_ids: Iterable[int], *, sources: Mapping[int, str] | None = None) -> None:
    """Tell receivers that these jobs' states changed; a receiver that fails is logged, never raised.

    ``sources`` (job id -> ``Job.source``), when the sender has the jobs at hand (the runner does), is
    passed on, so that a receiver about one source's jobs can leave the others without a query.
    """
    ids = sorted(set(job_ids))
    if ids and job_state_changed.receivers:
        job_state_changed.send_robust(sender=None, job_ids=ids, sources=sources)
