"""Fast multi-row writes for the sync and beat: COPY on PostgreSQL, executemany elsewhere, and
one-statement updates of many rows to different values.

Django's ``bulk_create`` spends about 60 µs of Python per row building model instances and adapting
every value; in a first sync of 10,000 jobs that was most of the time (see bench/sync_bench.py,
where COPY made the whole sync about twice as fast). Callers pass rows of plain values in the
Callers pass each row as a mapping from column name to value and must give every NOT NULL column
themselves: model defaults are not applied here (tests/scheduler/test_changes.py checks the column
lists against the models).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model


def insert_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (each a mapping of exactly ``columns`` to values) into ``model``'s table.

    Runs inside the caller's transaction. Raises ValueError naming the columns if a row's keys are
    not exactly ``columns`` (a misspelt or forgotten column must not become a silent NULL or default).
    """
    ordered = _in_column_order(columns, rows)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The driver's own cursor: translate its errors into Django's, as cursor.execute does.
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
            ):
                for values in ordered:
                    copy.write_row(values)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})", list(ordered))  # noqa: S608


def _in_column_order(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Any]]:
    expected = set(columns)
    for row in rows:
        if row.keys() != expected:
            missing, unknown = sorted(expected - row.keys()), sorted(row.keys() - expected)
            raise ValueError(f"row for insert_rows: missing columns {missing}, unknown columns {unknown}")
        yield [row[column] for column in columns]


def update_column(model: type[Model], column: str, pairs: Sequence[tuple[Any, Any]], *, batch: int = 2000) -> None:
    """Set ``column`` of many rows, each to its own value: ``pairs`` of (primary key, value).

    Hand-written because bulk_update's CASE WHEN costs seconds of Python per 10,000 rows.
    UPDATE ... FROM (VALUES ...) reads the same on PostgreSQL and SQLite (3.33+), whose VALUES
    columns are both named column1, column2. Values must not be None (their type cannot be inferred).
    """
    quote = connection.ops.quote_name
    pk_column = model._meta.pk.column
    if pk_column is None:  # only a non-concrete field has no column
        raise TypeError(f"{model.__name__} has no primary key column")
    table, pk = quote(model._meta.db_table), quote(pk_column)
    target = next(f for f in model._meta.concrete_fields if f.column == column)
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            rows = ", ".join(["(%s, %s)"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET {quote(column)} = v.column2 FROM (VALUES {rows}) AS v "  # noqa: S608
                f"WHERE {table}.{pk} = v.column1",
                # Adapted as the ORM would (SQLite stores datetimes as text in Django's own format).
                [v for key, value in chunk for v in (key, target.get_db_prep_save(value, connection))],
            )


def db_datetime(value: datetime) -> Any:
    """A datetime as this database's driver takes it (SQLite stores text)."""
    return connection.ops.adapt_datetimefield_value(value)


def db_json(value: Any) -> str:
    """JSON text, which both jsonb (PostgreSQL) and Django's SQLite JSONField accept."""
    return json.dumps(value)
