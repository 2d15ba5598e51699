"""The onboarding procedure's decisions, free of I/O: what a status means and how long to wait.

The flow in ``flows/onboard.py`` asks these questions; keeping the answers here lets them be
tested without Prefect, the Partner API or a database.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "Outcome",
    "Verdict",
    "classify",
    "poll_delay",
    "remaining",
]


class Verdict(StrEnum):
    """What an observed ``availability_status`` asks the onboarding to do next."""

    WAIT = "wait"  # setting_up: keep waiting
    READY = "ready"  # run the follow-up steps
    ERROR = "error"  # alert, fail
    UNKNOWN = "unknown"  # a value 360dialog never documented: record, alert, fail


class Outcome(StrEnum):
    """How an onboarding run ended (also the history's final ``state``)."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ALREADY_DONE = "already_done"
    OWNED_ELSEWHERE = "owned_elsewhere"
    PARKED = "parked"


_VERDICTS = {"setting_up": Verdict.WAIT, "ready": Verdict.READY, "error": Verdict.ERROR}


def classify(availability_status: str | None) -> Verdict:
    """Map a channel's ``availability_status`` to the next step; unknown values are UNKNOWN."""
    return _VERDICTS.get((availability_status or "").strip().lower(), Verdict.UNKNOWN)


def poll_delay(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before re-reading, doubling from ``initial`` up to ``maximum``.

    ``jitter`` spreads the wait by up to that fraction either way, so thousands of
    onboardings started together do not poll in lock-step.
    """
    base = min(maximum, initial * (2 ** max(0, attempt)))
    spread = base * jitter
    return max(0.0, min(maximum, base + (rng or random).uniform(-spread, spread)))


def remaining(deadline_at: datetime, now: datetime) -> timedelta:
    """Time left until the set-up deadline (negative once it has passed)."""
    return deadline_at - now
