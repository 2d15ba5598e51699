"""The history: SQLModel tables, engine/session, repository functions, Alembic migrations.

Flows and tasks never write SQL; they call the functions here, each taking a ``session`` and then
keyword arguments only::

    engine = make_engine(load_settings().database_url)
    with session_scope(engine) as session:
        run, created = start_or_get_run(session, partner_id=..., channel_id=..., ...)

This package does not import :mod:`onboarding.hub`; the tasks join the two.
"""

from __future__ import annotations

from onboarding.store.alerts import (
    failed_deliveries,
    get_open_alert,
    note_alert_notified,
    open_alert,
    open_alerts,
    record_delivery,
    resolve_alert,
    sink_label,
)
from onboarding.store.engine import (
    DatabaseUnavailable,
    InvalidDatabaseURL,
    StoreError,
    check_connection,
    make_engine,
    masked_url,
    session_scope,
)
from onboarding.store.inbox import (
    body_dedup_key,
    due_events,
    mark_event,
    prune_inbox,
    safe_headers,
    store_inbound_event,
)
from onboarding.store.installation import get_installation, note_sweep
from onboarding.store.migrate import current_revision, downgrade, head_revision, upgrade
from onboarding.store.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Alert,
    AlertDelivery,
    ChannelSnapshot,
    EventOutcome,
    InboundEvent,
    Installation,
    ObservationSource,
    OnboardingRun,
    OnboardingStep,
    RunState,
    StatusObservation,
)
from onboarding.store.observations import (
    Transition,
    channel_timeline,
    record_observation,
    record_transitions,
)
from onboarding.store.runs import (
    active_runs,
    active_runs_of,
    adopt_channels,
    attach_flow_run,
    channels_with_runs,
    count_runs_by_state,
    find_runs,
    finished_runs_of_flow_runs,
    get_active_run,
    get_run,
    get_step,
    latest_completed_runs,
    latest_finished_states,
    mark_run_waiting,
    note_wake_requests,
    record_step,
    runs_past_deadline,
    settle_run,
    start_or_get_run,
    start_runs,
    step_done,
    update_run,
)
from onboarding.store.snapshots import (
    SnapshotChange,
    SnapshotIn,
    get_snapshot,
    snapshots_by_status,
    unsettled_snapshots,
    upsert_snapshots,
)
from onboarding.store.types import UtcDateTime, utcnow

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "Alert",
    "AlertDelivery",
    "ChannelSnapshot",
    "DatabaseUnavailable",
    "EventOutcome",
    "InboundEvent",
    "Installation",
    "InvalidDatabaseURL",
    "ObservationSource",
    "OnboardingRun",
    "OnboardingStep",
    "RunState",
    "SnapshotChange",
    "SnapshotIn",
    "StatusObservation",
    "StoreError",
    "Transition",
    "UtcDateTime",
    "active_runs",
    "active_runs_of",
    "adopt_channels",
    "attach_flow_run",
    "body_dedup_key",
    "channel_timeline",
    "channels_with_runs",
    "check_connection",
    "count_runs_by_state",
    "current_revision",
    "downgrade",
    "due_events",
    "failed_deliveries",
    "find_runs",
    "finished_runs_of_flow_runs",
    "get_active_run",
    "get_installation",
    "get_open_alert",
    "get_run",
    "get_snapshot",
    "get_step",
    "head_revision",
    "latest_completed_runs",
    "latest_finished_states",
    "make_engine",
    "mark_event",
    "mark_run_waiting",
    "masked_url",
    "note_alert_notified",
    "note_sweep",
    "note_wake_requests",
    "open_alert",
    "open_alerts",
    "prune_inbox",
    "record_delivery",
    "record_observation",
    "record_step",
    "record_transitions",
    "resolve_alert",
    "runs_past_deadline",
    "safe_headers",
    "session_scope",
    "settle_run",
    "sink_label",
    "snapshots_by_status",
    "start_or_get_run",
    "start_runs",
    "step_done",
    "store_inbound_event",
    "unsettled_snapshots",
    "update_run",
    "upgrade",
    "upsert_snapshots",
    "utcnow",
]
