"""The spans shipyard.toml and the command options are written in: ``30m``, ``6h``, ``1d``, ``2w``.

Three readings of one grammar (a whole number and m, h, d or w), each with the message its
users know: a window or delay (``--window 1d``; more than zero), an alert duration (``cooldown
= "0m"`` may be zero), an age that may also be ``"keep"`` (retention).

>>> parse_window("6h"), parse_age("keep", option="age")
(datetime.timedelta(seconds=21600), None)
>>> parse_label_delay("0")
datetime.timedelta(0)
"""

from __future__ import annotations

import re
from datetime import timedelta

from shipyard.errors import InvalidInput

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SPAN = re.compile(r"(\d+)([mhdw])")
#: The age that keeps records forever.
KEEP = "keep"


def _span(text: str) -> tuple[int, timedelta] | None:
    match = _SPAN.fullmatch(text)
    if match is None:
        return None
    count = int(match.group(1))
    return count, timedelta(**{_UNITS[match.group(2)]: count})


def parse_window(text: str, *, option: str = "--window") -> timedelta:
    """``30m``, ``12h``, ``1d``, ``2w`` as a timedelta (more than zero; spaces around ignored)."""
    span = _span(text.strip())
    if span is None or span[0] == 0:
        raise InvalidInput(f"Invalid {option} '{text}': use a number and m, h, d or w, e.g. 1d.")
    return span[1]


def parse_label_delay(text: str, *, option: str = "--label-delay") -> timedelta:
    """``0``, ``30m``, ``12h``, ``1d``, ``2w`` as a timedelta."""
    if text.strip() == "0":
        return timedelta(0)
    return parse_window(text, option=option)


def parse_duration(text: object, *, what: str = "", allow_zero: bool = True) -> timedelta:
    """An alert rule's ``cooldown`` or ``window`` as a timedelta; ``InvalidInput`` names ``what``.

    >>> parse_duration("0m")
    datetime.timedelta(0)
    """
    span = _span(text) if isinstance(text, str) else None
    if span is None or (not allow_zero and span[0] == 0):
        least = "0" if allow_zero else "1"
        raise InvalidInput(
            f"{what + ' ' if what else ''}must be a whole number >= {least} followed by m, h, d "
            f"or w (e.g. '1h', '6h', '7d'). Got {text!r} instead."
        )
    return span[1]


def parse_age(value: object, *, option: str) -> timedelta | None:
    """``"90d"`` → 90 days; ``"keep"`` → ``None`` (kept forever)."""
    if value == KEEP:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f'Invalid {option}: {value!r}. Use a quoted age such as "90d" or "12w", or "keep".'
        )
    return parse_window(value, option=option)
