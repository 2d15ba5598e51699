"""How `up` words an onboarding's moments: from its history run and its delivery step.

The history run's state says where an onboarding is (``waiting``, ``permission``, ``ready``,
``undelivered``, ``completed``, ...). A flow run that hands the wait over to a fresh one ends
``Completed`` in Prefect, but the onboarding is not done: only the history's ``completed`` says
so. The delivery step (``notify_partner``, written by ``tasks/followup.py``) holds why the last
delivery failed (``completion callback to ... answered HTTP 503``); ``retry_at`` when the next
attempt comes.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session

from onboarding.store import OnboardingRun, OnboardingStep, RunState, get_step

__all__ = ["NOTIFY_STEP", "delivery_step", "event_text", "outcome", "retry_in"]

NOTIFY_STEP = "notify_partner"  # the step tasks/followup.py records each delivery attempt under
_HTTP_STATUS = re.compile(r"answered HTTP (\d{3})")


def delivery_step(session: Session, run: OnboardingRun) -> OnboardingStep | None:
    """The run's delivery record (``None`` before the first attempt)."""
    if run.id is None:
        return None
    return get_step(session, run_id=run.id, step=NOTIFY_STEP)


def _span(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds:02d} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


def retry_in(run: OnboardingRun) -> str:
    """``, retrying in 1 min`` from when the wait was recorded to the next attempt (or "")."""
    if run.retry_at is None:
        return ""
    return f", retrying in {_span(run.retry_at - run.updated_at)}"


def _delivery_problem(step: OnboardingStep | None) -> str:
    """Why the last delivery did not reach the partner, in a few words."""
    error = str((step.detail or {}).get("error", "")) if step is not None else ""
    status = _HTTP_STATUS.search(error)
    if status:
        return f"callback refused ({status.group(1)})"
    if "got no answer" in error:
        return "callback did not answer"
    return "key not delivered"


def event_text(run: OnboardingRun, step: OnboardingStep | None, *, first_sight: bool) -> str:
    """The live log's words for the state ``run`` has just reached."""
    state = run.state
    if state in (RunState.FAILED, RunState.TIMED_OUT):
        label = "failed" if state == RunState.FAILED else "timed out"
        return f"{label}: {run.failure_reason or 'no reason recorded'}"
    if first_sight and state in (RunState.PENDING, RunState.WAITING):
        return f"started ({run.trigger})"
    if state == RunState.PERMISSION:
        return f"waiting for the client's permission to create its key{retry_in(run)}"
    if state == RunState.UNDELIVERED:
        return f"{_delivery_problem(step)}{retry_in(run)}"
    if state == RunState.READY:
        return "channel ready: delivering its key"
    if state == RunState.WAITING:
        return "waiting for the channel"
    if state == RunState.COMPLETED:
        return f"completed: {outcome(run, step)}"  # the onboarding is done
    if state == RunState.CANCELLED:
        return f"cancelled: {run.failure_reason or 'no reason recorded'}"
    return str(state)


def outcome(run: OnboardingRun, step: OnboardingStep | None) -> str:
    """What became of the onboarding (finished) or what it waits for now (active)."""
    match run.state:
        case RunState.COMPLETED:
            if step is not None and step.outcome == "skipped":
                return "no callback set: no key sent"
            return "the partner holds its key"
        case RunState.FAILED | RunState.TIMED_OUT | RunState.CANCELLED:
            return run.failure_reason or str(run.state)
        case RunState.ADOPTED:
            return "ready before this installation (no key sent)"
        case RunState.PERMISSION:
            return "waiting for the client's permission"
        case RunState.UNDELIVERED:
            return f"{_delivery_problem(step)}; retrying"
        case RunState.READY:
            return "delivering its key"
    return f"waiting for the channel ({run.availability_status or 'not read yet'})"
