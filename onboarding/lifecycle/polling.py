"""How long a run polling in-process (``onboarding onboard``) waits between reads."""

from __future__ import annotations

import random

__all__ = ["poll_delay"]


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
