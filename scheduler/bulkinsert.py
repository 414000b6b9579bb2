"""Fast multi-row inserts for the sync: COPY on PostgreSQL, executemany elsewhere.

Django's ``bulk_create`` spends about 60 µs of Python per row building model instances and adapting
every value; in a first sync of 10,000 jobs that was most of the time (see bench/sync_bench.py,
where COPY made the whole sync about twice as fast). Callers pass rows of plain values in the
order of ``columns`` and must name every NOT NULL column themselves: model defaults are not applied
here (tests/scheduler/test_bulk.py checks the column lists against the models).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model


def insert_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert ``rows`` into ``model``'s table, inside the caller's transaction."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})", list(rows))  # noqa: S608


def db_datetime(value: datetime) -> Any:
    """A datetime as this database's driver takes it (SQLite stores text)."""
    return connection.ops.adapt_datetimefield_value(value)


def db_json(value: Any) -> str:
    """JSON text, which both jsonb (PostgreSQL) and Django's SQLite JSONField accept."""
    return json.dumps(value)
