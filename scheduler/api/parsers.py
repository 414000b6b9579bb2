"""The request body's one format: JSON, read without ever failing with a 500."""

from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's, plus nesting past Python's recursion limit, which ``json`` reports as RecursionError
    (not ValueError, so DRF's own parser lets it through as a 500)."""

    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply to read") from None
