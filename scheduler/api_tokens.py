"""API tokens: made (the key shown once), revoked, and checked on each request.

A key is 256 random bits; the database keeps only its SHA-256 (``ApiToken.key_hash``), so reading the
database, a backup or a log never gives anyone a usable key. A request's key is hashed and looked up
by that hash (one indexed read), and the stored hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from scheduler.models import ApiToken

#: Characters of the key kept on the row to tell tokens apart (the admin's list, ``api_token``).
KEY_PREFIX_CHARS = 8
#: A fixed throttle window: API_RATE_LIMIT requests in each.
WINDOW = timedelta(minutes=1)
#: ``last_used_at`` is stamped at most this often: a write per request would be a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Longest key looked up; longer is not a key of ours, and hashing megabytes costs time.
MAX_KEY_CHARS = 200


def key_hash(key: str) -> str:
    """The hex SHA-256 of ``key`` (UTF-8; unpaired surrogates kept, so any str hashes)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_new(token: ApiToken) -> str:
    """A new random key for the unsaved ``token``: its prefix and hash set on it, the key returned
    (to be shown once; it is not kept anywhere)."""
    key = secrets.token_urlsafe(32)  # 256 bits in 43 characters, URL- and header-safe
    token.key_prefix, token.key_hash = key[:KEY_PREFIX_CHARS], key_hash(key)
    return key


def token_create(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it with its key, which is shown once and never stored."""
    token = ApiToken(user_id=user.pk, name=name.strip()[:100])
    key = key_new(token)
    token.save()
    return token, key


def token_revoke(*, token: ApiToken) -> bool:
    """Refuse ``token`` from now on; False if it was already revoked (its first revocation time stays)."""
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        token.revoked_at = now
    return bool(revoked)


def tokens_revoke(*, user: AbstractBaseUser, key_prefix: str | None = None) -> int:
    """Revoke ``user``'s live tokens (only those whose key starts ``key_prefix``, if given); how many."""
    live = ApiToken.objects.filter(user_id=user.pk, revoked_at__isnull=True)
    if key_prefix is not None:
        live = live.filter(key_prefix=key_prefix[:KEY_PREFIX_CHARS])
    return live.update(revoked_at=timezone.now())


@dataclass(frozen=True)
class TokenUse:
    """A request's token, counted: the user it acts as and where it stands in its throttle window."""

    token_id: int
    user_id: int
    window_started_at: datetime
    window_requests: int
    counted_at: datetime  # by the clock the window is kept by (the database's, on PostgreSQL)

    def retry_after(self) -> float:
        """Seconds until this token's window ends and its count starts again."""
        return max((self.window_started_at + WINDOW - self.counted_at).total_seconds(), 0.0)


# One statement authenticates, counts the request in the token's window and stamps last_used_at, so
# two web processes serving one token never lose a count (each UPDATE sees the other's). A window
# older than a minute starts again at 1. Every SET expression reads the row as it was (SQL's rule).
# RETURNING: PostgreSQL, and SQLite from 3.35. {now} is the clock: on PostgreSQL the database's, so
# web hosts whose clocks disagree share one window (a host minutes fast locked the token out on every
# other host for as long); SQLite's file has one host, whose clock Django's text timestamps follow.
_COUNTED_USE_SQL = """
UPDATE scheduler_apitoken SET
  window_requests = CASE WHEN window_started_at IS NULL OR window_started_at <= {window_floor} THEN 1
                         ELSE window_requests + 1 END,
  window_started_at = CASE WHEN window_started_at IS NULL OR window_started_at <= {window_floor} THEN {now}
                           ELSE window_started_at END,
  last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at <= {used_floor} THEN {now} ELSE last_used_at END
WHERE key_hash = %(hash)s AND revoked_at IS NULL
RETURNING id, user_id, key_hash, window_started_at, window_requests, {now}
"""
_DATABASE_CLOCK = {
    "now": "statement_timestamp()",
    "window_floor": "statement_timestamp() - make_interval(secs => %(window)s)",
    "used_floor": "statement_timestamp() - make_interval(secs => %(used)s)",
}
_PROCESS_CLOCK = {"now": "%(now)s", "window_floor": "%(window_floor)s", "used_floor": "%(used_floor)s"}


def token_authenticate(key: str) -> TokenUse | None:
    """The live token whose key is ``key``, counted as one request; None for an unknown or revoked key.

    Whether the user may still sign in (``is_active``) is for the caller to check with the user.
    """
    if not key or len(key) > MAX_KEY_CHARS:
        return None
    wanted = key_hash(key)
    params: dict[str, Any] = {"hash": wanted}
    if connection.vendor == "postgresql":
        sql = _COUNTED_USE_SQL.format(**_DATABASE_CLOCK)
        params.update(window=WINDOW.total_seconds(), used=LAST_USED_RESOLUTION.total_seconds())
    else:
        sql = _COUNTED_USE_SQL.format(**_PROCESS_CLOCK)
        now, adapt = timezone.now(), connection.ops.adapt_datetimefield_value
        params.update(now=adapt(now), window_floor=adapt(now - WINDOW), used_floor=adapt(now - LAST_USED_RESOLUTION))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    token_id, user_id, stored_hash, started, requests, counted_at = row
    # The lookup was by the hash already; compared again in constant time so that no code path
    # ever compares the secret-derived value byte by byte.
    if not hmac.compare_digest(str(stored_hash), wanted):
        return None
    return TokenUse(token_id, user_id, _as_datetime(started), int(requests), _as_datetime(counted_at))


def _as_datetime(value: object) -> datetime:
    """A timestamp as the database driver returned it (SQLite: text) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def rate_limit() -> int:
    """Requests a minute each token may make (API_RATE_LIMIT)."""
    return int(settings.API_RATE_LIMIT)
