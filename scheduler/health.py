"""Health checks behind /healthz: each app registers its own (this one: database, broker, beat).

Each check returns a ``Check``; the endpoint is healthy only when all are. Messages name what is
wrong but never carry a URL, a key or an exception's text (which may hold a DSN). Even so, /healthz
is open to anyone who can reach it, and details (the beat leader's host and pid, ages, versions) help
an attacker: ``health_summary`` is all that anonymous callers get; the details are for staff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models.functions import Now
from django.utils import timezone

from scheduler.leases import BEAT_LEASE
from scheduler.models import Lease


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


HealthCheck = Callable[[], Check]
_checks: dict[str, HealthCheck] = {}


def register_health_check(name: str, check: HealthCheck) -> None:
    """Add a check under ``name``; apps call this from ``AppConfig.ready``, in INSTALLED_APPS order."""
    _checks[name] = check


def database_check() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return Check(False, f"database unreachable ({type(exc).__name__})")
    return Check(True, f"{connection.vendor} answers")


def broker_check() -> Check:
    try:
        with current_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
            transport = broker.transport_cls
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; any of them means "not healthy"
        return Check(False, f"broker unreachable ({type(exc).__name__})")
    return Check(True, f"{transport} broker answers")


def beat_check() -> Check:
    lease = Lease.objects.filter(name=BEAT_LEASE).annotate(now=Now()).first()
    if lease is None:
        return Check(False, "no beat has started")
    silent = (lease.now - lease.renewed_at).total_seconds()
    if silent > settings.BEAT_LEASE_TTL:
        return Check(False, f"no beat has renewed the leader lease for {silent:.0f} s")
    return Check(True, f"leader {lease.holder} renewed {silent:.0f} s ago")


class UnknownHealthCheck(LookupError):
    pass


# A report: "checked_at" (ISO time) and, under each check's name, its Check as a dict.
HealthReport = dict[str, str | dict[str, object]]


def run_health_checks(names: list[str] | None = None) -> tuple[bool, HealthReport]:
    """Run the named checks (default: all); healthy only if every one passes.

    The report holds ``checked_at`` (ISO time) and each check's result under its name.
    """
    checks = dict(_checks)
    unknown = set(names or ()) - checks.keys()
    if unknown:
        raise UnknownHealthCheck(f"unknown checks {', '.join(sorted(unknown))}; known: {', '.join(checks)}")
    if names:
        checks = {name: check for name, check in checks.items() if name in names}
    results: dict[str, Check] = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except DatabaseError as exc:
            results[name] = Check(False, f"check failed ({type(exc).__name__})")
    return all(result.ok for result in results.values()), {
        "checked_at": timezone.now().isoformat(),
        **{name: result.as_dict() for name, result in results.items()},
    }


def health_summary(healthy: bool, report: HealthReport) -> dict[str, object]:
    """What anyone may be told: ``{"status": "ok" | "unhealthy", "failing": [check names]}``.

    No detail, holder, age or time: those are in ``report``, which only staff see.
    """
    failing = [name for name, result in report.items() if isinstance(result, dict) and not result["ok"]]
    return {"status": "ok" if healthy else "unhealthy", "failing": failing}
