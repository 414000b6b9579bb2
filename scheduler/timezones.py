"""Which time zone names a job may use: IANA's, as this machine's zone database has them.

Standard library only, so that the settings can use the same rule at start-up as job definitions
(``JOB_DEFAULT_TIMEZONE`` and every job's zone are judged alike).
"""

from __future__ import annotations

import functools
import zoneinfo

#: Names the zone database answers that are not zones of IANA's: ``localtime`` is this machine's own
#: zone (a job would move with the host), ``posixrules`` a template. ``right/`` and ``posix/`` copies
#: are not in ``available_timezones()`` either, so they are refused too.
_NOT_IANA = frozenset({"localtime", "posixrules"})


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_IANA


def iana_zone_known(name: str) -> bool:
    """Whether ``name`` is an IANA zone this machine knows (``Europe/London``, ``UTC``), exactly as written."""
    return name in _known_zones()
