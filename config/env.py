"""Strict readers of the environment for the settings, and the one-line refusal of a bad value.

Every reader takes the variable's name and its default (used only when the variable is unset),
parses the text exactly, and raises ``SettingError`` naming the variable and what it accepts, so a
bad value stops the process at start-up instead of surfacing later as an obscure error. A variable
set to an empty string is a value like any other: refused where it means nothing.

django-environ is used for what it parses well (database URLs, in ``config.env_urls``), not for
numbers or booleans: its ``float`` deletes every character but digits, ``,``, ``.`` and ``-``
before parsing (``1e3`` becomes ``13.0``, ``abc`` fails as ``could not convert string to float:
''``), and its ``bool`` reads any unknown word (``ture``) as False.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from email.utils import parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email

from scheduler.timezones import iana_zone_known

# Durations longer than a year are typing mistakes, and beyond what timers and timedelta accept.
MAX_SECONDS = 366 * 24 * 3600
# Counts and sizes are stored in, and passed to, 32-bit signed integers (PostgreSQL, C APIs).
MAX_WHOLE_NUMBER = 2**31 - 1

# Plain decimal notation with an optional exponent: what float() reads, without inf, nan or "_".
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WHOLE = re.compile(r"\+?\d+", re.ASCII)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# A dotted Python module name.
_MODULE_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
# An IANA zone name: Area/Location parts of letters, digits, "_", "+" and "-".
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)


class SettingError(ImproperlyConfigured):
    """A setting from the environment is malformed or out of range.

    The message is one line: the variable, what it accepts and, unless the value is secret, the
    value given.
    """


def raw(name: str) -> str | None:
    """The variable's text exactly as set, or None when it is unset."""
    return os.environ.get(name)


def shown(value: str) -> str:
    """``value`` quoted for a one-line message, cut short if long (a file pasted in by mistake)."""
    return repr(value) if len(value) <= 100 else f"{value[:100]!r}... ({len(value)} characters)"


def text(name: str, default: str) -> str:
    """Free text (a path, a name); surrounding spaces are refused, since they are never meant."""
    value = raw(name)
    if value is None:
        return default
    if value != value.strip() or any(not character.isprintable() for character in value):
        raise SettingError(f"{name} must not have surrounding spaces or control characters, got {shown(value)}")
    return value


def code(name: str, default: str, *, example: str) -> str:
    """An identifier such as an Alloy design or attribute code: no spaces, no control characters."""
    value = raw(name)
    if value is None:
        return default
    if value and not re.fullmatch(r"[!-~]+", value):
        raise SettingError(f"{name} must be a code like {example}, without spaces, got {shown(value)}")
    return value


def flag(name: str, default: bool) -> bool:
    """true/false, yes/no, on/off or 1/0 in any case; any other word is refused, not read as false."""
    value = raw(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise SettingError(f"{name} must be true or false, got {shown(value)}")


def seconds(name: str, default: float) -> float:
    """A duration in seconds: a finite number above zero and at most ``MAX_SECONDS``."""
    accepts = f"a number of seconds above zero and at most {MAX_SECONDS}"
    return _bounded(name, default, accepts, lambda number: 0 < number <= MAX_SECONDS)


def fraction(name: str, default: float) -> float:
    """A number from 0 to 1 inclusive."""
    return _bounded(name, default, "a number from 0 to 1", lambda number: 0 <= number <= 1)


def whole_number(name: str, default: int, *, minimum: int = 1, maximum: int = MAX_WHOLE_NUMBER) -> int:
    """An integer written in digits, from ``minimum`` to ``maximum`` inclusive."""
    value = raw(name)
    if value is None:
        return default
    accepts = f"a whole number from {minimum} to {maximum}"
    stripped = value.strip()
    # Length first: int() of thousands of digits is slow, and such a number is out of range anyway.
    if not _WHOLE.fullmatch(stripped) or len(stripped) > 20 or not minimum <= int(stripped) <= maximum:
        raise SettingError(f"{name} must be {accepts}, got {shown(value)}")
    return int(stripped)


def choice(name: str, default: str, choices: Sequence[str]) -> str:
    """One of ``choices``, in any case; returns it as spelled in ``choices``."""
    value = raw(name)
    if value is None:
        return default
    spelled = {option.lower(): option for option in choices}
    picked = spelled.get(value.strip().lower())
    if picked is None:
        raise SettingError(f"{name} must be one of {', '.join(choices)}, got {shown(value)}")
    return picked


def names(name: str, default: Sequence[str], *, pattern: str, what: str) -> list[str]:
    """A comma-separated list; each entry (spaces around it dropped) must match ``pattern``.

    ``what`` describes one entry for the message, e.g. "module names like jobs.examples".
    """
    value = raw(name)
    if value is None:
        return list(default)
    entries = [entry.strip() for entry in value.split(",")]
    for entry in entries:
        if not re.fullmatch(pattern, entry, re.ASCII):
            quoted = f"the empty entry in {shown(value)}" if not entry else shown(entry)
            raise SettingError(f"{name} must be comma-separated {what}, got {quoted}")
    return entries


def email_addresses(name: str, default: Sequence[str]) -> list[str]:
    """A comma-separated list of e-mail addresses, each checked by Django's own validator."""
    value = raw(name)
    if value is None:
        return list(default)
    if not value.strip():
        return []
    entries = [entry.strip() for entry in value.split(",")]
    for entry in entries:
        try:
            validate_email(entry)
        except ValidationError:
            raise SettingError(
                f"{name} must be e-mail addresses separated by commas, such as ops@example.org, "
                f"but {shown(entry)} is not one"
            ) from None
    return entries


def email_sender(name: str, default: str) -> str:
    """One sender, as Django's DEFAULT_FROM_EMAIL takes it: ``ops@example.org`` or
    ``alloysync <ops@example.org>``; the address checked by Django's validator."""
    value = raw(name)
    if value is None:
        return default
    _display, address = parseaddr(value.strip())
    try:
        validate_email(address)
    except ValidationError:
        raise SettingError(
            f"{name} must be one e-mail address, such as ops@example.org or alloysync <ops@example.org>, "
            f"got {shown(value)}"
        ) from None
    if "\n" in value or "\r" in value:  # a header injection, whatever parseaddr made of it
        raise SettingError(f"{name} must be on one line, got {shown(value)}")
    return value.strip()


def host_names(name: str, default: Sequence[str]) -> list[str]:
    """Host names as browsers send them: example.org, .example.org (with subdomains), an IP, [::1], *.

    A URL or a host with a port would never match a request, so they are refused.
    """
    return names(
        name,
        default,
        pattern=r"\*|\.?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\]",
        what="host names (example.org, .example.org for its subdomains, 127.0.0.1, [::1] or *)",
    )


def modules(name: str, default: Sequence[str]) -> list[str]:
    """Comma-separated names of Python modules that can be found (they are imported once apps load)."""
    listed = names(name, default, pattern=_MODULE_NAME, what="Python module names such as jobs.examples")
    for module in listed:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        except Exception:  # noqa: BLE001, S112 - its package cannot be imported this early; app loading says why
            continue
        if not found:
            raise SettingError(f"{name} names {module!r}, which is not a module Python can find")
    return listed


def time_zone(name: str, default: str) -> str:
    """An IANA time zone name that this machine's zone database knows (``Europe/London``, ``UTC``)."""
    value = raw(name)
    if value is None:
        return default
    if _ZONE_NAME.fullmatch(value) and iana_zone_known(value):  # not "localtime", this machine's own
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
            pass
        else:
            return value
    raise SettingError(f"{name} must be an IANA time zone such as Europe/London or UTC, got {shown(value)}")


def _bounded(name: str, default: float, accepts: str, within: Callable[[float], bool]) -> float:
    value = raw(name)
    if value is None:
        return default
    number = float(value) if _DECIMAL.fullmatch(value.strip()) else math.nan
    if not (math.isfinite(number) and within(number)):
        raise SettingError(f"{name} must be {accepts}, got {shown(value)}")
    return number


@contextmanager
def exit_on_setting_error(status: int = 2) -> Iterator[None]:
    """Turn a ``SettingError`` inside into its one-line message on stderr and exit ``status``.

    For the processes' entry points (manage.py, the Celery app, wsgi): an operator starting a
    process with a bad setting needs the setting's name, not a traceback through Django's loader.
    """
    from scheduler.registry import JobModuleError  # imported late: the registry needs Django's settings

    try:
        yield
    except (SettingError, JobModuleError) as error:
        sys.stderr.write(f"alloysync cannot start: {error}\n")
        raise SystemExit(status) from None
