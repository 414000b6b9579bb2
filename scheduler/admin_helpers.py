"""Small pieces the project's admin pages share: who is acting, times with their zone, status badges."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from scheduler.charts import STATUS_COLOURS, time_text
from scheduler.models import JobRun
from scheduler.plain_text import one_line

#: The stylesheet every project admin page and the dashboard include (wrapping, name isolation).
ADMIN_CSS = "scheduler/admin.css"


def acting_user(request: HttpRequest) -> AbstractBaseUser:
    """The logged-in user behind an admin request (the admin lets no anonymous user this far)."""
    user = request.user
    if not isinstance(user, AbstractBaseUser):
        raise PermissionDenied
    return user


def site_time(when: datetime | None) -> str:
    """``when`` in the site's zone (``TIME_ZONE``), the zone named; ``—`` if none."""
    return time_text(when, timezone.get_default_timezone())


def site_time_cell(when: datetime | None) -> SafeString:
    """``site_time`` kept on one line, for list columns: a time broken over four lines reads as four things."""
    return format_html('<span style="white-space:nowrap">{}</span>', site_time(when))


def status_badge(status: str, label: str) -> SafeString:
    """A run's status as a coloured badge: failed runs stand out in red, the colours of the run bars."""
    colour = STATUS_COLOURS.get(status, "#616161")
    text = "#000" if status == JobRun.Status.QUEUED else "#fff"  # the light blue needs dark text
    return format_html(
        '<span class="status-badge status-{}" style="background:{};color:{};padding:1px 7px;'
        'border-radius:9px;white-space:nowrap;font-weight:600">{}</span>',
        status,
        colour,
        text,
        label,
    )


def name_cell(name: str) -> SafeString:
    """A name from outside (a job's, a task's) for a page: one line, bidi controls removed, isolated.

    ``<bdi>`` keeps whatever direction the name's own letters take from reordering the text after it.
    """
    return format_html('<bdi class="plain-name">{}</bdi>', one_line(name, 400))
