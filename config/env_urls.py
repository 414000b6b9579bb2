"""URL settings read strictly: the database, the broker, Alloy's base URL, mail and web addresses.

A URL may carry a password, so a refusal quotes it through ``shown_url`` (credentials masked), and
the settings keep passwords in types whose ``repr`` is masked (``config.env_secrets``).
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from typing import Any

import environ
import httpx
from kombu.utils.url import parse_url

from config.env import SettingError, raw, shown
from config.env_secrets import RedactedText, RedactedUrl, shown_url

# The databases this service runs on: PostgreSQL in production, SQLite for the embedded setup
# (the sync's COPY and beat's SKIP LOCKED have no MySQL or Oracle counterpart here).
DATABASE_SCHEMES = ("postgres", "postgresql", "pgsql", "sqlite")
DATABASE_FORMS = "postgres://user:password@host:5432/name or sqlite:///path/to/file.sqlite3"
# Brokers whose client library is installed: Redis (celery[redis]), RabbitMQ (amqp, with kombu)
# and kombu's filesystem transport for the embedded setup.
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem")
# django-environ's e-mail schemes (environ.Env.EMAIL_SCHEMES), the backend each selects.
EMAIL_SCHEMES = tuple(environ.Env.EMAIL_SCHEMES)
EMAIL_FORMS = "smtp+tls://user:password@host:587, smtps://user:password@host:465 or consolemail://"
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?", re.ASCII)


def database_config(name: str, default: str) -> dict[str, Any]:
    """Django's ``DATABASES["default"]`` from a database URL, its password masked in any repr."""
    url = raw(name)
    url = default if url is None else url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise SettingError(f"{name} must be a database URL such as {DATABASE_FORMS}, got {shown_url(url)}")
    _refuse_stray_at(name, url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # django-environ warns about, rather than refuses, what it cannot read
            config: dict[str, Any] = environ.Env.db_url_config(url)
    except ValueError:
        # Its messages (a port that is not a number) may quote the password, so they are not passed on.
        raise SettingError(
            f"{name} is not a URL that can be read (check the port and brackets), got {shown_url(url)}"
        ) from None
    if not config.get("NAME"):
        raise SettingError(f"{name} must name the database, as in {DATABASE_FORMS}, got {shown_url(url)}")
    if config.get("PASSWORD"):
        config["PASSWORD"] = RedactedText(config["PASSWORD"])
    return config


def broker_url(name: str, default: str) -> str:
    """A Celery broker URL of an installed transport, its password masked in any repr."""
    url = raw(name)
    url = default if url is None else url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in BROKER_SCHEMES:
        accepts = ", ".join(f"{known}://" for known in BROKER_SCHEMES)
        raise SettingError(f"{name} must be a broker URL starting {accepts}, got {shown_url(url)}")
    _refuse_stray_at(name, url)
    try:
        parse_url(url)
    except ValueError:
        raise SettingError(
            f"{name} is not a URL that can be read (check the port and brackets), got {shown_url(url)}"
        ) from None
    return RedactedUrl(url)


def alloy_base_url(name: str, default: str, *, allow_plain_http: bool, allow_name: str) -> str:
    """Alloy's base URL: https:// (or http:// to this machine, or anywhere with ``allow_plain_http``).

    No user name or password (the key is sent as a Bearer header), no query or fragment (paths are
    appended to it). ``allow_name`` is the setting that allows plain http, named in the refusal.
    """
    url = raw(name)
    url = default if url is None else url
    accepts = f"{name} must be Alloy's https:// address, such as https://api.uk.alloyapp.io"
    if "@" in url:
        raise SettingError(
            f"{name} must not hold a user name or password (the key is ALLOY_API_KEY), got {shown_url(url)}"
        )
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise SettingError(f"{accepts}; {shown(url)} cannot be read: {exc}") from None
    if parsed.scheme not in ("http", "https") or not _valid_host(parsed.host) or "://" not in url:
        raise SettingError(f"{accepts}, got {shown(url)}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise SettingError(f"{accepts}; the port of {shown(url)} is out of range")
    if parsed.query or parsed.fragment or "?" in url or "#" in url:
        # Only the part before them is shown: a query may carry a token (?token=...).
        before = url.split("?", 1)[0].split("#", 1)[0]
        raise SettingError(f"{accepts}, without a query or fragment (not shown), got {shown(before)}?...")
    if parsed.scheme == "http" and not (allow_plain_http or _is_loopback(parsed.host)):
        raise SettingError(
            f"{name} must be https:// (plain http:// sends the key unencrypted: it is allowed to localhost, "
            f"127.0.0.0/8 and ::1, or anywhere with {allow_name}=true), got {shown(url)}"
        )
    return url


def _refuse_stray_at(name: str, url: str) -> None:
    """Refuse an ``@`` past the host: a password with an unencoded ``/`` or ``?`` spills into the path.

    Parsed as given, part of the password would become the database name or the virtual host, and be
    shown wherever those are.
    """
    authority = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]
    if url.count("@") != authority.count("@") or authority.count("@") > 1:
        raise SettingError(
            f"{name} must have '@', '/', '?' and '#' in its user name and password percent-encoded "
            f"(%40, %2F, %3F, %23), got {shown_url(url)}"
        )


def _valid_host(host: str) -> bool:
    if _HOST_NAME.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def email_config(name: str, url: str) -> dict[str, Any]:
    """Django's ``EMAIL_*`` settings from django-environ's e-mail URL, its password masked in any repr.

    ``url`` comes from the environment or a ``*_FILE`` (it may hold a password, even where a host
    should be: a refusal shows no more than the scheme and host). Keys django-environ leaves as None
    are left out, so Django's own defaults apply.
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    shown_mail = _shown_mail_url(url)
    if scheme not in EMAIL_SCHEMES:
        raise SettingError(f"{name} must be a mail URL such as {EMAIL_FORMS}, got {shown_mail}")
    _refuse_stray_at(name, url)
    try:
        config: dict[str, Any] = environ.Env.email_url_config(url)
    except ValueError:
        raise SettingError(f"{name} is not a URL that can be read (check the port), got {shown_mail}") from None
    if scheme.startswith("smtp"):
        if not config.get("EMAIL_HOST"):
            raise SettingError(f"{name} must name the mail server, as in {EMAIL_FORMS}, got {shown_mail}")
        if config.get("EMAIL_PORT") is not None and not 0 < config["EMAIL_PORT"] < 65536:
            raise SettingError(f"{name} must have a port from 1 to 65535, got {shown_mail}")
    if scheme == "filemail":
        # django-environ drops the leading "/" of filemail:///var/mail (a relative tmp/... would land
        # in each process's working folder): the folder is read here instead.
        folder = url.split("://", 1)[1]
        if not folder.startswith("/"):
            raise SettingError(
                f"{name} must name an absolute folder, as in filemail:///var/mail/alloysync, got {shown_mail}"
            )
        config["EMAIL_FILE_PATH"] = folder
    if config.get("EMAIL_HOST_PASSWORD"):
        config["EMAIL_HOST_PASSWORD"] = RedactedText(config["EMAIL_HOST_PASSWORD"])
    return {key: value for key, value in config.items() if value is not None}


def _shown_mail_url(url: str) -> str:
    """A mail URL quoted for a refusal: masked as ``shown_url`` masks, and, without an ``@``, no more
    than the scheme and host (``smtp+tls://apikey:SECRET``, a forgotten ``@host``, puts the password
    where a port would be)."""
    if "@" in url:
        return shown_url(url)
    if "://" not in url:
        return "a value without scheme:// (not shown)"
    scheme, rest = url.split("://", 1)
    authority = rest.split("/", 1)[0]
    host = authority.split(":", 1)[0]
    return repr(f"{scheme}://{host}{':...' if ':' in authority else ''}{'/...' if '/' in rest else ''}")


def web_url(name: str, url: str, *, example: str, secret: bool = False) -> str:
    """An absolute http:// or https:// address with a valid host (a link base, a webhook).

    ``secret``: the address itself is a credential (Slack's and Teams' incoming-webhook URLs carry
    their token in the path): it may have a query, and a refusal shows no more than its host.
    """
    accepts = f"{name} must be an http:// or https:// address such as {example}"
    before = url.split("?", 1)[0].split("#", 1)[0]
    if secret:  # the scheme and host only: the path, a port or the whole value may be the token
        if "://" not in before:
            raise SettingError(f"{accepts}, got a value without http:// or https:// (not shown)")
        scheme, rest = before.split("://", 1)
        authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        before = f"{scheme}://{authority.split(':', 1)[0]}" + ("/..." if "/" in rest or ":" in authority else "")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        reason = "" if secret else f": {exc}"  # httpx quotes the part it could not read
        raise SettingError(f"{accepts}; {shown_url(before)} cannot be read{reason}") from None
    if parsed.scheme not in ("http", "https") or not _valid_host(parsed.host) or "://" not in url:
        raise SettingError(f"{accepts}, got {shown_url(before)}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise SettingError(f"{accepts}; the port of {shown_url(before)} is out of range")
    if not secret and (parsed.query or parsed.fragment or "?" in url or "#" in url):
        raise SettingError(f"{accepts}, without a query or fragment (not shown), got {shown_url(before)}?...")
    return url
