"""A run's first and last writes, each in one statement on PostgreSQL: the run with its step runs;
then its last step's outcome, the run's own, and the job's failure streak.

Each autocommitted write waits for the WAL to reach disk; writes made in one statement wait once,
and make one round trip. SQLite has no data-modifying CTEs: there the runner writes them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from scheduler.metrics import CounterAdd, merged, upsert_sql
from scheduler.models import Job, JobRun, StepRun
from scheduler.types import JSONValue


@dataclass(frozen=True)
class RunEnd:
    """What the statement did: whether it ended the run (False: the reaper ended it first), the job's
    failure streak after it, and whether this success ended a streak."""

    finished: bool
    streak: int
    recovered: bool


def run_end_supported() -> bool:
    """Whether this database takes a run's first and last writes in one statement each."""
    return connection.vendor == "postgresql"


def run_end_with_step(
    *,
    run_id: int,
    status: str,
    error: str,
    step_id: int,
    step_status: str,
    step_result: JSONValue,
    step_error: str,
    now: datetime,
    counts: Sequence[CounterAdd] = (),
) -> RunEnd:
    """Record the last step's outcome, end the run if it is still running (a compare-and-set, as the
    reaper's verdict stands), and count it into its job's failure streak and ``counts`` into the
    metrics (``scheduler.metrics``), in one statement: counted once, by whoever ended the run.

    Raises what the database raises (a value it refuses): nothing is then written.
    """
    failed = status == JobRun.Status.FAILED
    quote = connection.ops.quote_name
    step, run, job = (quote(model._meta.db_table) for model in (StepRun, JobRun, Job))
    stamp = connection.ops.adapt_datetimefield_value(now)
    result = StepRun._meta.get_field("result").get_db_prep_save(step_result, connection)
    counted, counted_params = _counted_cte(counts, source="ended")
    sql = f"""
        WITH step AS (
            UPDATE {step} SET status = %s, finished_at = %s, result = %s, error = %s WHERE id = %s
        ), ended AS (
            UPDATE {run} SET status = %s, finished_at = %s, error = %s WHERE id = %s AND status = %s
            RETURNING job_id
        ), streak AS (
            UPDATE {job} SET failure_streak = CASE WHEN %s THEN {job}.failure_streak + 1 ELSE 0 END
            FROM ended WHERE {job}.id = ended.job_id AND (%s OR {job}.failure_streak > 0)
            RETURNING {job}.failure_streak
        ){counted}
        SELECT (SELECT count(*) FROM ended), (SELECT failure_streak FROM streak)
    """  # noqa: S608 - table names from the models, values as parameters
    params = [
        step_status, stamp, result, step_error, step_id,
        status, stamp, error, run_id, JobRun.Status.RUNNING,
        failed, failed,
    ]  # fmt: skip
    params += counted_params
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ended, streak = cursor.fetchone()
    # No streak row: a success on a job that was not failing (nothing to reset).
    return RunEnd(finished=bool(ended), streak=int(streak or 0), recovered=not failed and streak is not None)


def run_start_with_steps(run: JobRun, step_runs: list[StepRun], counts: Sequence[CounterAdd] = ()) -> None:
    """Insert ``run`` (new) and its ``step_runs`` (new, ``run`` set) in one statement, adding ``counts``
    to the metrics (its lag) in the same one; set their ids.

    Raises IntegrityError as inserting ``run`` alone would (its unique indexes: one run per due
    time, one running run per job), and then inserts nothing.
    """
    run_columns, run_values = _insert_values(run, skip={"id"})
    step_columns, _ = _insert_values(step_runs[0], skip={"id", "run"})
    quote = connection.ops.quote_name
    rows: list[str] = []
    params: list[Any] = list(run_values)
    for step_run in step_runs:
        _, values = _insert_values(step_run, skip={"id", "run"})
        # Typed placeholders: in VALUES, a NULL or a text would otherwise not be read as its column's type.
        rows.append("(" + ", ".join(f"%s::{cast}" for cast in _casts(step_run, skip={"id", "run"})) + ")")
        params += values
    step_list = ", ".join(quote(column) for column in step_columns)
    counted, counted_params = _counted_cte(counts, source="run")
    sql = f"""
        WITH run AS (
            INSERT INTO {quote(JobRun._meta.db_table)} ({", ".join(quote(c) for c in run_columns)})
            VALUES ({", ".join(["%s"] * len(run_columns))}) RETURNING id
        ){counted}
        INSERT INTO {quote(StepRun._meta.db_table)} ({quote("run_id")}, {step_list})
        SELECT run.id, step.* FROM run CROSS JOIN (VALUES {", ".join(rows)}) AS step ({step_list})
        RETURNING {quote("run_id")}, id, position
    """  # noqa: S608 - names from the models, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params[: len(run_values)] + counted_params + params[len(run_values) :])
        ids = cursor.fetchall()
    run.pk = ids[0][0]
    run._state.adding, run._state.db = False, connection.alias
    by_position = {position: step_id for _, step_id, position in ids}  # RETURNING promises no order
    for step_run in step_runs:
        step_run.pk, step_run.run_id = by_position[step_run.position], run.pk
        step_run._state.adding, step_run._state.db = False, connection.alias


def _insert_values(instance: JobRun | StepRun, *, skip: set[str]) -> tuple[list[str], list[Any]]:
    fields = [field for field in type(instance)._meta.concrete_fields if field.name not in skip]
    values = [field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields]
    return [str(field.column) for field in fields], values


def _casts(instance: JobRun | StepRun, *, skip: set[str]) -> list[str]:
    fields = [field for field in type(instance)._meta.concrete_fields if field.name not in skip]
    return [str(field.cast_db_type(connection)) for field in fields]


def _counted_cte(counts: Sequence[CounterAdd], *, source: str) -> tuple[str, list[Any]]:
    """``counts`` added to the metrics as one more data-modifying CTE, once per row ``source`` returns;
    nothing if there are none."""
    rows = merged(counts)
    if not rows:
        return "", []
    upsert, params = upsert_sql(rows, source=source)
    return f", counted AS ({upsert})", params
