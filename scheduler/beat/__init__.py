"""Celery beat's scheduler for the project: ``celery -A config beat`` runs ``scheduler.beat:JobScheduler``.

- ``scheduler``: ``JobScheduler``, the Celery scheduler class (leader lease, the tick, sending);
- ``pickup``: following changed PeriodicTask rows into their next due time (``ScheduleState``);
- ``claim``: claiming what is due, once, and what to send for it.
"""

from scheduler.beat.scheduler import JobScheduler

__all__ = ["JobScheduler"]
