"""Tasks of the watcher's sweep: read in batches, record, reconcile, then retry what failed."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from onboarding.alerts import AlertKind
from onboarding.hub import Channel
from onboarding.hub.scan import SweepRead, created_at, modified_at, read_partner_channels
from onboarding.lifecycle import FlowRunGone, Seen, Tick
from onboarding.orchestration.flow_runs import (
    NoDeployment,
    close_orphaned_runs,
    lost_flow_runs,
    revive_stalled_runs,
    run_tags,
    stalled_flow_runs,
)
from onboarding.orchestration.reconciler import Reconciled, Signal, reconcile
from onboarding.runtime import alert_service, history_engine, hub_client, partner_id, settings
from onboarding.store import (
    ObservationSource,
    RunState,
    SnapshotChange,
    SnapshotIn,
    active_runs,
    count_runs_by_state,
    finished_runs_of_flow_runs,
    get_installation,
    record_transitions,
    session_scope,
    unsettled_snapshots,
    upsert_snapshots,
)
from onboarding.timeline import format_duration
from tasks.channels import retry_if_transient

__all__ = [
    "SweepProgress",
    "SweepSummary",
    "publish_overview",
    "read_channels",
    "reconcile_channels",
    "record_sweep",
    "replay_inbox",
    "resolve_recovered",
    "retry_alert_deliveries",
    "revive_stalled",
]

READ_RETRY_DELAYS = [5, 15, 30]  # seconds between attempts at reading the partner's channels
ALERT_RETRY_WINDOW = timedelta(days=1)  # failed alert deliveries older than this are given up
UNSTARTED_GRACE = timedelta(minutes=5)  # a claim or a wake takes far less, even on a loaded API


class SweepSummary(Reconciled):
    """What one sweep saw and did, its reconciliation included (`onboarding sweep --json`)."""

    seen: dict[str, int] = Field(default_factory=dict)
    transitions: int = 0
    revived: list[str] = Field(default_factory=list)
    closed: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    replayed: int = 0
    alert_retries: int = 0
    reasons: dict[str, list[str]] = Field(default_factory=dict, exclude=True)


@task(
    name="read-channels",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=READ_RETRY_DELAYS,
    retry_condition_fn=retry_if_transient,
)
async def read_channels() -> SweepRead:
    """Read the partner's setting_up and error channels, the newly ready ones, and the tracked."""
    with session_scope(history_engine()) as session:
        tracked: dict[str, datetime | None] = {
            snap.channel_id: snap.last_seen_at
            for snap in unsettled_snapshots(session, partner_id=partner_id())
        }
        for run in active_runs(session, partner_id=partner_id()):
            tracked.setdefault(run.channel_id, None)
        last_sweep = get_installation(session).last_sweep_at
    async with hub_client() as hub:
        return await read_partner_channels(hub, tracked=tracked, ready_since=last_sweep)


def _snapshot(channel: Channel) -> SnapshotIn:
    return SnapshotIn(
        channel_id=channel.id,
        client_id=channel.client_id,
        availability_status=channel.availability_status,
        status=channel.status,
        phone_number=channel.phone_number,
        client_name=channel.client_name,
        modified_at=modified_at(channel),
    )


@task(name="record-sweep", cache_policy=NO_CACHE)
async def record_sweep(read: SweepRead) -> list[SnapshotChange]:
    """Upsert every channel's snapshot and record the transitions, in one transaction."""
    now = datetime.now(UTC)
    with session_scope(history_engine()) as session:
        changes = upsert_snapshots(
            session,
            partner_id=partner_id(),
            snapshots=[_snapshot(channel) for channel in read.channels.values()],
            seen_at=now,
        )
        record_transitions(session, changes=changes, source=ObservationSource.SWEEP, seen_at=now)
    return changes


@task(name="reconcile-channels", cache_policy=NO_CACHE)
async def reconcile_channels(read: SweepRead) -> Reconciled:
    """Reconcile every onboarding with what the sweep saw, with time, and with Prefect.

    Each channel read is an observation; each active onboarding also gets a tick (deadlines,
    permission waits, delivery retries) and, when Prefect lost its flow run, that news.
    """
    with session_scope(history_engine()) as session:
        active = active_runs(session, partner_id=partner_id())
    signals = [
        Signal(
            channel.id, channel.client_id, Seen(channel.availability_status, created_at(channel))
        )
        for channel in read.channels.values()
    ]
    signals += [Signal(run.channel_id, run.client_id, Tick(read.started_at)) for run in active]
    by_flow_run = {run.flow_run_id: run.channel_id for run in active if run.flow_run_id}
    try:
        lost = await lost_flow_runs(list(by_flow_run))
    except NoDeployment:
        lost = {}  # nothing can be re-created without it; the reconciliation says so
    signals += [
        Signal(by_flow_run[flow_run_id], None, FlowRunGone(cancelled, flow_run_id))
        for flow_run_id, cancelled in lost.items()
    ]
    return await reconcile(signals, trigger="schedule", swept_at=read.started_at)


def _onboarding_tags() -> list[str]:
    """The tags every onboarding flow run of this partner carries."""
    return run_tags(partner_id=partner_id(), client_id=None)[:2]


@task(name="revive-stalled", cache_policy=NO_CACHE)
async def revive_stalled() -> list[str]:
    """Re-drive the onboardings whose flow run died mid-run (no progress for the owner lease),
    or never started (its wake or claim was cut off half-way)."""
    now = datetime.now(UTC)
    stale_before = now - timedelta(seconds=settings().owner_lease)
    with session_scope(history_engine()) as session:
        channels = {
            run.flow_run_id: (run.channel_id, _aware(run.updated_at) <= stale_before)
            for run in active_runs(session, partner_id=partner_id())
            if run.flow_run_id
        }
    if not channels:
        return []
    revived = await revive_stalled_runs(
        channels,
        older_than=stale_before,
        stale=[flow_run_id for flow_run_id, (_, stale) in channels.items() if stale],
        unstarted_before=now - UNSTARTED_GRACE,
    )
    return [channels[flow_run_id][0] for flow_run_id in revived]


@task(name="close-orphaned-runs", cache_policy=NO_CACHE)
async def close_orphaned() -> list[str]:
    """Close the flow runs left ``Running`` (or marked ``Crashed``) by a process that died after
    its onboarding finished.

    The history already says how the onboarding ended; only Prefect's view is stale. Returns the
    channels whose flow run was closed.
    """
    stale_before = datetime.now(UTC) - timedelta(seconds=settings().owner_lease)
    stalled = await stalled_flow_runs(_onboarding_tags(), older_than=stale_before)
    if not stalled:
        return []
    with session_scope(history_engine()) as session:
        finished = finished_runs_of_flow_runs(session, flow_run_ids=stalled)
        outcomes = {
            run.flow_run_id: (
                run.state == RunState.COMPLETED,
                f"onboarding {run.state} (history run #{run.id}); its process ended "
                "before it could report this",
            )
            for run in finished
            if run.flow_run_id
        }
        channel_of = {run.flow_run_id: run.channel_id for run in finished}
    closed = await close_orphaned_runs(outcomes)
    return [channel_of[flow_run_id] for flow_run_id in closed]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def count_by_status(read: SweepRead) -> dict[str, int]:
    """How many channels of each availability_status the sweep saw."""
    return dict(
        Counter(channel.availability_status or "unknown" for channel in read.channels.values())
    )


@task(name="retry-alert-deliveries", cache_policy=NO_CACHE)
async def retry_alert_deliveries() -> int:
    """Resend alert notices whose delivery failed in the last day."""
    since = datetime.now(UTC) - ALERT_RETRY_WINDOW
    return len(await asyncio.to_thread(alert_service().retry_failed_deliveries, since=since))


@task(name="publish-overview", cache_policy=NO_CACHE)
async def publish_overview(summary: SweepSummary) -> None:
    """Publish the watcher's table: channels by status, runs by state, the oldest waiting."""
    with session_scope(history_engine()) as session:
        by_state = count_runs_by_state(session, partner_id=partner_id())
        waiting = active_runs(session, partner_id=partner_id())[:10]
    now = datetime.now(UTC)
    rows: list[dict[str, str]] = [
        {"what": "channels", "which": status, "count": str(count), "detail": ""}
        for status, count in sorted(summary.seen.items())
    ]
    rows += [
        {"what": "runs", "which": state, "count": str(count), "detail": ""}
        for state, count in sorted(by_state.items())
    ]
    rows += [
        {
            "what": "oldest waiting",
            "which": run.channel_id,
            "count": "",
            "detail": f"{run.client_name or run.client_id}: {run.state} for "
            f"{format_duration(now - run.started_at)}",
        }
        for run in waiting
    ]
    await create_table_artifact(
        key="watch-channels",
        table=rows,
        description=f"Channels by status and onboardings by state at {now:%Y-%m-%d %H:%M:%S} UTC",
    )


@task(name="replay-inbox", cache_policy=NO_CACHE)
async def replay_inbox() -> int:
    """Hand the inbox's unhandled webhooks to Prefect again (they were never lost)."""
    from onboarding.orchestration.webhooks import reconcile_event
    from onboarding.receiver import replay_unhandled

    report = await replay_unhandled(
        history_engine(), reconcile_event, min_age=settings().replay_after
    )
    return report.handled


@task(name="resolve-recovered", cache_policy=NO_CACHE)
async def resolve_recovered(changes: list[SnapshotChange]) -> list[str]:
    """Close alerts that no longer hold: the Partner API answered, and channels became ready."""
    service = alert_service()
    partner = partner_id()
    for kind in (AlertKind.AUTH_FAILED, AlertKind.HUB_UNAVAILABLE):
        await asyncio.to_thread(service.resolve, kind=kind, partner_id=partner)
    recovered = [
        change.channel_id
        for change in changes
        if change.availability_status == "ready" and not change.is_new
    ]
    for channel_id in recovered:
        await asyncio.to_thread(service.resolve_channel, partner_id=partner, channel_id=channel_id)
    return recovered


class SweepProgress:
    """The sweep's progress artifact: what share of its phases is done, for the UI."""

    PHASES = ("read", "recorded", "reconciled", "replayed", "published")

    def __init__(self, artifact_id: UUID | None) -> None:
        self._artifact_id = artifact_id

    @classmethod
    async def start(cls) -> SweepProgress:
        """Open the artifact at 0 % (nothing is shown outside a flow run)."""
        from prefect.artifacts import acreate_progress_artifact
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is None:
            return cls(None)
        artifact_id = await acreate_progress_artifact(
            progress=0.0, key="watch-channels-progress", description="Sweep in progress"
        )
        return cls(artifact_id)

    async def done(self, phase: str) -> None:
        """Mark ``phase`` (one of :attr:`PHASES`) as done."""
        from prefect.artifacts import aupdate_progress_artifact

        if self._artifact_id is None:
            return
        percent = 100.0 * (self.PHASES.index(phase) + 1) / len(self.PHASES)
        await aupdate_progress_artifact(
            self._artifact_id, percent, description=f"Sweep: {phase} ({percent:.0f} %)"
        )
