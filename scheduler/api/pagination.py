"""Pages of results. Jobs: numbered pages (counting 100,000 jobs is cheap). Runs and syncs: a cursor,
newest first, that never counts: counting 5 million runs on every page would cost more than the page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

#: Most results a page holds; ``page_size`` above it is refused.
MAX_PAGE_SIZE = 500
# Years a cursor's time may have: every row's time is in them; the ends of datetime's range are not
# (arithmetic there overflows, and each database reads them differently).
_EARLIEST, _LATEST = 1900, 9000


def page_size_of(request: Request, default: int) -> int:
    """``?page_size=``: 1 to 500, ASCII digits; 400 naming it otherwise (never capped or defaulted
    silently: a client asking for 1000 would think it had every row)."""
    text = request.query_params.get("page_size")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:6]) <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
    return int(text)


def plain_number(text: str) -> bool:
    """ASCII digits, no sign, spaces or leading zero: how this API writes numbers in URLs."""
    return text.isascii() and text.isdigit() and not text.startswith("0")


class JobPagination(PageNumberPagination):
    """``?page=N`` (from 1) and ``?page_size=`` (1 to 500, default 50); ``count`` is the total.

    DRF's ``?page=last`` is refused with the rest: ``count`` and ``page_size`` say which page is last.
    A page past the end is a 404 (there is no such page), a page that is no number a 400.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int:
        return page_size_of(request, self.page_size)

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        text = request.query_params.get(self.page_query_param)
        if text is not None and not (plain_number(text) and len(text) <= 18):
            raise ValidationError({self.page_query_param: ["must be a whole number from 1"]})
        return super().paginate_queryset(queryset, request, view)


class NewestFirstCursorPagination(BasePagination):
    """Newest first by ``(time_field, id)``; ``next`` is the URL of the following page, null at the end.

    The cursor is the last row's time and id (opaque to clients): each page is an index range scan
    from there, as fast on page 10,000 as on page 1, and a row added meanwhile neither repeats nor
    shifts a page. There is no total count and no page number, by design.
    """

    time_field = "created_at"
    cursor_query_param = "cursor"
    page_size = 50
    page_size_query_param = "page_size"

    def __init__(self) -> None:
        self.next_url: str | None = None

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        if not isinstance(queryset, QuerySet):
            raise TypeError("a cursor pages a queryset")
        size = self._page_size(request)
        after = self._decode(request.query_params.get(self.cursor_query_param))
        if after is not None:
            moment, pk = after
            queryset = queryset.filter(
                Q(**{f"{self.time_field}__lt": moment}) | Q(**{self.time_field: moment, "pk__lt": pk})
            )
        # The caller's order is kept when it already is newest first (a job's runs are ordered by
        # job too, which keeps PostgreSQL on the per-job index: see of_job_newest_first).
        if not queryset.query.order_by:
            queryset = queryset.order_by(f"-{self.time_field}", "-pk")
        rows = list(queryset[: size + 1])
        page, more = rows[:size], len(rows) > size
        self.next_url = None
        if more:
            last = page[-1]
            cursor = self._encode(getattr(last, self.time_field), last.pk)
            self.next_url = replace_query_param(request.build_absolute_uri(), self.cursor_query_param, cursor)
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.next_url, "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page; null at the end.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: copy it from the previous page's next link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results a page, 1 to {MAX_PAGE_SIZE} (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]

    def _page_size(self, request: Request) -> int:
        return page_size_of(request, self.page_size)

    def _encode(self, moment: datetime, pk: int) -> str:
        text = json.dumps([moment.isoformat(), pk], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def _decode(self, cursor: str | None) -> tuple[datetime, int] | None:
        if cursor is None:
            return None
        try:
            text = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
            moment_text, pk = json.loads(text)
            moment = datetime.fromisoformat(moment_text)
            if type(pk) is not int or not 0 < pk < 2**63 or timezone.is_naive(moment):
                raise ValueError
            # In UTC, as this API writes every cursor: fromisoformat takes offsets to +-23:59, PostgreSQL
            # only to +-15:59, and 0001-01-01+14:00 overflows (OverflowError) in SQLite's conversion.
            if moment.utcoffset() != timedelta(0):
                raise ValueError
            moment = moment.astimezone(UTC)
            if not _EARLIEST <= moment.year <= _LATEST:
                raise ValueError
        except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError, OverflowError):
            raise ValidationError(
                {self.cursor_query_param: ["not a cursor from this API: copy the next link"]}
            ) from None
        return moment, pk
