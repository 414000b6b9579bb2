"""Text from outside (job names from Alloy items, errors from job code) made safe to show anywhere.

Alerts, the admin, the dashboard and terminal messages all show such text. It may hold newlines, NUL,
ESC sequences, bidi controls (U+202E shows what follows reversed), zero-width characters or megabytes.
"""

from __future__ import annotations

import re
import unicodedata

# Line and paragraph separators and control characters (newlines, NUL, ESC) would start new lines or
# garble a terminal; they become spaces. Format characters (bidi overrides such as U+202E, zero-width
# joiners), surrogates, private-use and unassigned code points are dropped: they either reorder what
# follows or show as nothing.
_AS_SPACE = frozenset({"Cc", "Zl", "Zp"})
_DROPPED = frozenset({"Cf", "Cs", "Co", "Cn"})
_SPACES = re.compile(r"\s+")
# The explicit bidi controls: embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069) and
# the marks (U+200E, U+200F). Any of them can reorder the text shown after it.
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_line(text: str) -> str:
    """``text`` on one line: control characters and line breaks as spaces, runs of white space as one,
    format characters (bidi controls, zero-width marks), surrogates and unassigned code points dropped."""
    text = "".join(_clean_char(ch) for ch in text)
    return _SPACES.sub(" ", text).strip()


def _clean_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if category in _AS_SPACE:
        return " "
    if category in _DROPPED:
        return ""
    return ch


def cut(text: str, max_chars: int) -> str:
    """``text`` if it has at most ``max_chars`` characters, else its start ending with ``…``."""
    if len(text) > max_chars:
        return text[: max(max_chars - 1, 0)].rstrip() + "…"
    return text


def one_line(value: object, max_chars: int) -> str:
    """``value`` as one clean line (``clean_line``) of at most ``max_chars`` characters."""
    # Only the start is ever shown: read no more of a huge value than can matter.
    return cut(clean_line(str(value)[: max_chars * 4 + 64]), max_chars)


def without_bidi_controls(text: str) -> str:
    """``text`` with its bidi controls removed and everything else (line breaks included) kept."""
    return _BIDI_CONTROLS.sub("", text)
