"""The last line of defence: a bulk write the database refuses still writes every change it accepts.

The refusals are provoked for real (PostgreSQL refuses a NUL and over-long text; SQLite keeps them),
with values that skipped the checks in ``scheduler.stored_values``, as a value nobody foresaw would.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from scheduler.changes import JobChanges
from scheduler.changes_bisect import jobs_apply_changes_or_bisect
from scheduler.jobspec import job_spec_build
from scheduler.models import Job

pytestmark = pytest.mark.django_db
ON_POSTGRESQL = connection.vendor == "postgresql"


def spec(name: str):
    return job_spec_build(name=name, cron="30 2 * * *", timezone="UTC", steps='examples.echo {"message": "x"}')


def test_refused_creates_are_found_and_every_other_change_is_written():
    good = [(f"{n:024x}", spec(f"good {n}")) for n in range(40)]
    bad = [("f" * 65, spec("id too long")), (f"{99:024x}", dataclasses.replace(spec("x"), name="nul\x00name"))]
    changes = JobChanges(source="alloy", create=[*good[:20], bad[0], *good[20:], bad[1]])
    outcome = jobs_apply_changes_or_bisect(changes)
    written = set(Job.objects.values_list("external_id", flat=True))
    assert {external_id for external_id, _ in good} <= written
    assert PeriodicTask.objects.filter(task="scheduler.run_job").count() == len(written)
    if ON_POSTGRESQL:
        assert [(r.kind, r.key) for r in outcome.refused] == [("create", "f" * 65), ("create", f"{99:024x}")]
        assert "too long" in outcome.refused[0].reason and "0x00" in outcome.refused[1].reason
        assert len(outcome.applied.create) == 40 and len(written) == 40
    else:  # SQLite keeps both: nothing is refused
        assert outcome.refused == [] and len(written) == 42


def test_updates_of_jobs_deleted_meanwhile_are_left_out_and_the_rest_written():
    jobs_apply_changes_or_bisect(JobChanges(source="alloy", create=[(f"{n:024x}", spec(f"job {n}")) for n in range(3)]))
    ids = sorted(Job.objects.values_list("pk", flat=True))
    Job.objects.filter(pk=ids[1]).delete()
    outcome = jobs_apply_changes_or_bisect(
        JobChanges(source="alloy", update=[(pk, spec(f"renamed {pk}")) for pk in ids])
    )
    assert outcome.vanished == [ids[1]]
    assert [job_id for job_id, _ in outcome.applied.update] == [ids[0], ids[2]]
    assert set(Job.objects.values_list("name", flat=True)) == {f"renamed {ids[0]}", f"renamed {ids[2]}"}
