"""Type aliases for values that are JSON: step keyword arguments, results, stored steps."""

from __future__ import annotations

from typing import TypeAlias

#: Any value ``json.loads`` can return (and PostgreSQL's jsonb can store).
JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"
#: A JSON object: a step's keyword arguments, a stored step.
JSONObject: TypeAlias = dict[str, JSONValue]
