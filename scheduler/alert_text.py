"""What an alert says: plain lines that read the same in mail, Slack and Teams, whatever a job is called.

Job names come from Alloy items and errors from job code: either may hold newlines, NUL, right-to-left
marks, megabytes, or chat markup (``<!channel>``, ``@everyone``, ``[click](https://evil)``). Every
value put in an alert goes through ``alert_field`` first: one line, bounded, no control or invisible
format characters, mentions and link syntax defused. The webhook's payload is escaped once more
(``webhook_text``) for the characters Slack reads as markup; mail gets the plain text.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from scheduler.cron import CronError, next_fire
from scheduler.models import Job
from scheduler.plain_text import clean_line, cut

#: Characters kept of a job's name in an alert, and of an error's first line.
NAME_MAX_CHARS = 120
ERROR_MAX_CHARS = 400
#: Alert.subject's column.
SUBJECT_MAX_CHARS = 255

# Mentions that would notify a whole channel where a chat reads plain "@name" as one. U+200B after
# the "@" keeps the word readable and no longer a mention.
_MENTION = re.compile(r"@(?=(?:everyone|channel|here|all|room)\b)", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"
# Markdown's inline link (Teams renders it): "[text](url)" would show a label over any address.
_MARKDOWN_LINK = re.compile(r"\]\s*\(")


def alert_field(value: object, max_chars: int) -> str:
    """``value`` as one line of at most ``max_chars`` characters, safe to put in any alert.

    Control characters and line breaks become spaces, runs of white space one space; invisible format
    characters (bidi overrides, zero-width marks), surrogates and unassigned code points are dropped;
    ``@everyone``-style mentions and markdown links are defused. Longer text is cut with ``…``.
    """
    # Only the start is ever shown: read no more of a huge value than can matter.
    text = clean_line(str(value)[: max_chars * 4 + 64])
    text = _MENTION.sub("@" + _ZERO_WIDTH_SPACE, text)
    text = _MARKDOWN_LINK.sub("] (", text)
    return cut(text, max_chars)


def first_line(text: str, max_chars: int = ERROR_MAX_CHARS) -> str:
    """The first non-blank line of ``text`` (an error, a traceback's summary), bounded and cleaned."""
    for line in str(text).splitlines():
        if line.strip():
            return alert_field(line, max_chars)
    return ""


def webhook_text(text: str) -> str:
    """``text`` for a Slack or Teams ``text`` field: ``&``, ``<`` and ``>`` as entities, lines apart.

    Slack reads ``<...>`` as links and mentions (``<!channel>``) and wants these three escaped, and
    only these; Teams renders the entities as the characters. Teams reads the field as markdown, where
    a single line break joins two lines into one paragraph: lines are separated by a blank line,
    which Slack shows as a little more space. Links are left bare on their own line: Slack's
    ``<url|label>`` form shows as raw text in Teams, a bare URL is a link in both.
    """
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\n\n".join(escaped.split("\n"))


def subject_line(headline: str) -> str:
    return alert_field(f"[alloysync] {headline}", SUBJECT_MAX_CHARS)


def job_label(job: Job) -> str:
    """The job's name as an alert shows it, quoted, with its id (names need not be unique)."""
    return f'"{alert_field(job.name, NAME_MAX_CHARS)}" (job {job.pk})'


def admin_url(viewname: str, pk: int) -> str:
    """The absolute admin address of one object, from ``SITE_URL``."""
    return settings.SITE_URL.rstrip("/") + reverse(viewname, args=[pk])


def local_time(moment: datetime, zone_name: str) -> str:
    """``moment`` in the zone, with the zone named: ``2026-12-01 02:30 GMT (Europe/London)``."""
    try:
        zone = ZoneInfo(zone_name)
    except (ValueError, KeyError, OSError):  # a zone this host does not know: say UTC instead
        zone, zone_name = ZoneInfo("UTC"), "UTC"
    zone_name = alert_field(zone_name, 64)
    local = moment.astimezone(zone)
    abbreviation = local.strftime("%Z")
    shown = f"{abbreviation} ({zone_name})" if abbreviation and abbreviation != zone_name else zone_name
    return f"{local:%Y-%m-%d %H:%M} {shown}"


def next_run_text(job: Job) -> str:
    """When the job next runs on its schedule, in its zone, or why it does not."""
    task = job.periodic_task
    if task is None:
        return "none: the job is removed"
    if not task.enabled:
        return "none while paused (resume it in the admin)"
    try:
        due = next_fire(job.cron, job.timezone, timezone.now())
    except CronError:
        return f"unknown: the cron {alert_field(job.cron, 100)!r} cannot be read"
    return local_time(due, alert_field(job.timezone, 64))
