"""The onboarding lifecycle, free of I/O and of Prefect: observations in, decisions out."""

from onboarding.lifecycle.decide import (
    Action,
    ActiveRun,
    Decision,
    DeliveryFailed,
    Event,
    FlowRunGone,
    History,
    KeyRefused,
    Observation,
    Policy,
    Requested,
    RunRead,
    Seen,
    Tick,
    Verdict,
    Waiting,
    classify,
    decide,
)
from onboarding.lifecycle.events import EVENT_MEANINGS, Meaning, meaning_of
from onboarding.lifecycle.polling import poll_delay

__all__ = [
    "EVENT_MEANINGS",
    "Action",
    "ActiveRun",
    "Decision",
    "DeliveryFailed",
    "Event",
    "FlowRunGone",
    "History",
    "KeyRefused",
    "Meaning",
    "Observation",
    "Policy",
    "Requested",
    "RunRead",
    "Seen",
    "Tick",
    "Verdict",
    "Waiting",
    "classify",
    "decide",
    "meaning_of",
    "poll_delay",
]
