"""The report's time window: ``7d``, ``24h``, ``30m`` (or ``90s``) parsed into a timedelta."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_since"]

_SPAN = re.compile(r"^\s*(\d+)\s*([dhms])\s*$", re.IGNORECASE)
_UNIT = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_since(text: str) -> timedelta:
    """``7d`` -> 7 days, ``24h`` -> 24 hours, ``30m`` -> 30 minutes, ``90s`` -> 90 seconds.

    Raises :class:`ValueError` with a readable message for anything else (or a zero span).
    """
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"cannot read {text!r} as a time span: use e.g. 7d, 24h, 30m")
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount == 0:
        raise ValueError(f"the time span {text!r} is empty: use at least 1{unit}")
    return timedelta(**{_UNIT[unit]: amount})
