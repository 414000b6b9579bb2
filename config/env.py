"""Small helpers the settings read the environment with: secrets from ``*_FILE``, checked numbers.

They fail at start-up with ``ImproperlyConfigured`` naming the variable, so a bad value stops the
process before it does anything, instead of surfacing later as an obscure error.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()


def read_secret(name: str) -> str | None:
    """The value of ``name``, or the stripped contents of the file named by ``name_FILE``.

    Docker and Kubernetes secrets arrive as files; reading them here keeps keys out of the process
    environment that ``ps e`` and crash reporters can see.
    """
    value: str = env.str(name, default="")
    if value:
        return value
    path = env.str(f"{name}_FILE", default="")
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE points at {path!r}, which cannot be read: {exc.strerror}") from exc


def positive_number(name: str, default: float) -> float:
    """``name`` as a number above zero (seconds, bytes, counts), or ``default`` when unset."""
    value: float = env.float(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number, got {value}")
    return value
