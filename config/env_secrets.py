"""Secrets from the environment or from ``*_FILE``, and the types that keep them out of settings dumps.

``manage.py diffsettings``, Django's error pages and crash reporters print settings with ``repr``.
Our own secret (the Alloy key) is a ``Secret``: masked everywhere, its value read by one explicit
call. Secrets that Django or a driver must receive as a plain ``str`` (``SECRET_KEY``, the database
password, a broker URL's password) are ``str`` subclasses whose ``repr`` alone is masked.
"""

from __future__ import annotations

import hmac
import re
import stat
from pathlib import Path

from config.env import SettingError, raw

MASK = "********"
# Alloy's keys are UUIDs (36 characters); anything far longer is a file or a paste gone wrong.
API_KEY_MAX_LENGTH = 256


class Secret:
    """A secret setting's value: ``Secret('********')`` in every repr, str and format.

    ``reveal()`` is the one way to read it, so the place that sends the key says so, and mypy flags
    any place that passes the wrapper where a ``str`` is expected.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: give it to the HTTP client, never to a log, message or record."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


class RedactedText(str):
    """A ``str`` shown as ``'********'`` by ``repr``: for secrets Django itself must read as text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


class RedactedUrl(str):
    """A URL ``str`` whose ``repr`` hides any user name and password (``redis://********@host/0``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return shown_url(self)


def shown_url(url: str) -> str:
    """``url`` quoted for a message: as given, or, if it may hold credentials, without them.

    Anything before the last ``@`` may be a user name or password (even unencoded, in a URL too
    malformed to parse), and a query may carry ``password=``; both are left out.
    """
    if "@" not in url:
        return str.__repr__(url)  # not repr(): a RedactedUrl's own __repr__ comes back here
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    after = url.rsplit("@", 1)[1].split("?", 1)[0]
    return repr(f"{scheme}://{MASK}@{after}")


def header_token_problem(value: str) -> str | None:
    """Why ``value`` cannot be a Bearer token in an HTTP header, or None. Never quotes the value."""
    if len(value) > API_KEY_MAX_LENGTH:
        return f"it is {len(value)} characters long"
    if "\n" in value or "\r" in value:
        return "it contains a line break"
    if not value.isascii():
        return "it contains a non-ASCII character"
    if not re.fullmatch(r"[!-~]+", value):
        return "it contains a space or a control character"
    return None


def read_secret(name: str, *, header_token: bool = False) -> str | None:
    """The value of ``name``, or the contents of the file named by ``name_FILE`` (surrounding white space dropped).

    Docker and Kubernetes secrets arrive as files; reading them here keeps keys out of the process
    environment that ``ps e`` and crash reporters can see. Both set is refused (which one is meant?),
    as is an empty or unreadable file. With ``header_token``, a value that cannot be a Bearer token
    is refused too, naming the variable and never showing the value. Unset or empty: None.
    """
    value, path = raw(name) or "", raw(f"{name}_FILE") or ""
    if value and path:
        raise SettingError(f"{name} and {name}_FILE are both set: set only one")
    if value:
        _check(name, value, header_token)
        return value
    if not path:
        return None
    contents = _secret_file_text(f"{name}_FILE", path)
    if not contents:
        raise SettingError(f"{name}_FILE points at {path!r}, which is empty")
    _check(f"{name}_FILE", contents, header_token, where=f" in {path!r}")
    return contents


#: A secret file holds one key or password: anything longer is the wrong file (``/dev/zero`` once
#: filled the machine's memory before it could be refused).
SECRET_FILE_MAX_BYTES = 64 * 1024


def _secret_file_text(variable: str, path: str) -> str:
    """The stripped text of the secret file ``path``, read at most ``SECRET_FILE_MAX_BYTES`` + 1 bytes.

    Only a regular file (or a link to one, as Kubernetes mounts them) is read: a device, a pipe or a
    folder is refused by name before anything is read, so start-up can neither hang nor fill memory.
    """
    file = Path(path)
    try:
        if not stat.S_ISREG(file.stat().st_mode):  # stat follows links, as Kubernetes mounts secrets
            raise SettingError(f"{variable} points at {path!r}, which is not a regular file")
        with file.open("rb") as handle:
            data = handle.read(SECRET_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise SettingError(f"{variable} points at {path!r}, which cannot be read: {exc.strerror}") from None
    if len(data) > SECRET_FILE_MAX_BYTES:
        raise SettingError(f"{variable} points at {path!r}, which holds more than {SECRET_FILE_MAX_BYTES:,} bytes")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingError(f"{variable} points at {path!r}, which is not UTF-8 text") from None


def _check(variable: str, value: str, header_token: bool, where: str = "") -> None:
    reason = header_token_problem(value) if header_token else None
    if reason:
        raise SettingError(
            f"{variable} must be one token: printable ASCII without spaces or line breaks, at most "
            f"{API_KEY_MAX_LENGTH} characters, but the value{where} is not ({reason}; the value is not shown)"
        )
