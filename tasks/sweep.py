"""Tasks of the watcher's sweep: read in batches, record, then start, wake and alert."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel, Field

from onboarding.alerts import AlertContext, AlertKind
from onboarding.hub import Channel
from onboarding.store import (
    ObservationSource,
    RunState,
    SnapshotChange,
    SnapshotIn,
    active_runs,
    channels_with_runs,
    count_runs_by_state,
    finished_runs_of_flow_runs,
    record_transitions,
    session_scope,
    unsettled_snapshots,
    upsert_snapshots,
)
from onboarding.sweep import (
    ActiveRun,
    SweepPlan,
    SweepRead,
    modified_at,
    plan_sweep,
    read_partner_channels,
)
from onboarding.timeline import format_duration
from tasks.alerting import alert_service
from tasks.channels import retry_if_transient
from tasks.flow_runs import (
    close_orphaned_runs,
    count_in_flight,
    revive_stalled_runs,
    stalled_flow_runs,
    wake_runs,
)
from tasks.intake import NoDeployment
from tasks.intake import start_onboardings as start_many
from tasks.resources import history_engine, hub_client, partner_id, settings

__all__ = [
    "Actions",
    "SweepProgress",
    "SweepSummary",
    "alert_overdue",
    "announce_transitions",
    "plan_next_steps",
    "publish_overview",
    "read_channels",
    "record_sweep",
    "replay_inbox",
    "resolve_recovered",
    "retry_alert_deliveries",
    "revive_stalled",
    "start_onboardings",
    "wake_onboardings",
]


class SweepSummary(BaseModel):
    """What one sweep saw and did (printed by `onboarding sweep --json`)."""

    seen: dict[str, int] = Field(default_factory=dict)
    transitions: int = 0
    started: list[str] = Field(default_factory=list)
    woken: list[str] = Field(default_factory=list)
    revived: list[str] = Field(default_factory=list)
    closed: list[str] = Field(default_factory=list)
    would_start: list[str] = Field(default_factory=list)
    would_wake: list[str] = Field(default_factory=list)
    overdue: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    replayed: int = 0
    alert_retries: int = 0
    prefect_note: str | None = None


@task(
    name="read-channels",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=[5, 15, 30],
    retry_condition_fn=retry_if_transient,
)
async def read_channels() -> SweepRead:
    """Read the partner's setting_up and error channels, and the tracked ones that left them."""
    with session_scope(history_engine()) as session:
        tracked: dict[str, datetime | None] = {
            snap.channel_id: snap.last_seen_at
            for snap in unsettled_snapshots(session, partner_id=partner_id())
        }
        for run in active_runs(session, partner_id=partner_id()):
            tracked.setdefault(run.channel_id, None)
    async with hub_client() as hub:
        return await read_partner_channels(hub, tracked=tracked)


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


@task(name="plan-next-steps", cache_policy=NO_CACHE)
async def plan_next_steps(read: SweepRead) -> SweepPlan:
    """Decide which onboardings to start, which waiting runs to wake, which are overdue."""
    with session_scope(history_engine()) as session:
        active = {
            run.channel_id: ActiveRun(run.id, run.channel_id, run.flow_run_id, run.deadline_at)
            for run in active_runs(session, partner_id=partner_id())
            if run.id is not None
        }
        candidates = [
            cid
            for cid, channel in read.channels.items()
            if channel.availability_status == "setting_up" and cid not in active
        ]
        onboarded = channels_with_runs(session, channel_ids=candidates, state=RunState.COMPLETED)
    return plan_sweep(
        channels=read.channels.values(),
        active=active,
        onboarded=onboarded,
        now=datetime.now(UTC),
    )


class Actions(BaseModel):
    """What the sweep did to onboardings, or would have done without a deployment to run them."""

    started: list[str] = Field(default_factory=list)
    woken: list[str] = Field(default_factory=list)
    would_start: list[str] = Field(default_factory=list)
    would_wake: list[str] = Field(default_factory=list)
    prefect_note: str | None = None


@task(name="start-onboardings", cache_policy=NO_CACHE)
async def start_onboardings(channels: list[Channel]) -> Actions:
    """Start a parked onboarding for each channel nobody is onboarding yet."""
    try:
        results = await start_many(
            [(channel.id, channel.client_id) for channel in channels], trigger="schedule"
        )
    except NoDeployment as exc:
        return Actions(would_start=[channel.id for channel in channels], prefect_note=str(exc))
    return Actions(started=[result.channel_id for result in results if result.created])


@task(name="wake-onboardings", cache_policy=NO_CACHE)
async def wake_onboardings(runs: list[ActiveRun], *, dry_run: bool = False) -> Actions:
    """Wake the parked onboarding runs whose channel left setting_up (or past its deadline).

    At most ``ONBOARDING_WAKE_LIMIT`` runs are due or executing at once; when more channels
    settle together, the rest stay parked until a later sweep finds room. Thousands of due runs
    would make every poll of the serving process (and Prefect's late-runs service) read them all.
    """
    if dry_run:
        return Actions(would_wake=[run.channel_id for run in runs])
    candidates = [run.flow_run_id for run in runs if run.flow_run_id]
    if not candidates:
        return Actions()
    room = settings().wake_limit - await count_in_flight(_onboarding_tags())
    woken = set(await wake_runs(candidates, limit=max(room, 0)))
    return Actions(woken=[run.channel_id for run in runs if run.flow_run_id in woken])


def _onboarding_tags() -> list[str]:
    """The tags every onboarding flow run of this partner carries."""
    return ["onboarding", f"partner:{partner_id()}"]


@task(name="revive-stalled", cache_policy=NO_CACHE)
async def revive_stalled() -> list[str]:
    """Re-drive the onboardings whose flow run died mid-run (no progress for the owner lease)."""
    stale_before = datetime.now(UTC) - timedelta(seconds=settings().owner_lease)
    with session_scope(history_engine()) as session:
        stale = {
            run.flow_run_id: run.channel_id
            for run in active_runs(session, partner_id=partner_id())
            if run.flow_run_id and _aware(run.updated_at) <= stale_before
        }
    if not stale:
        return []
    revived = await revive_stalled_runs(stale, older_than=stale_before)
    return [stale[flow_run_id] for flow_run_id in revived]


@task(name="close-orphaned-runs", cache_policy=NO_CACHE)
async def close_orphaned() -> list[str]:
    """Close the flow runs left ``Running`` by a process that died after its onboarding finished.

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


@task(name="alert-overdue", cache_policy=NO_CACHE)
async def alert_overdue(runs: list[ActiveRun]) -> list[str]:
    """Alert once per onboarding still setting_up past its deadline."""
    service = alert_service()
    for run in runs:
        service.raise_alert(
            kind=AlertKind.SETUP_DEADLINE_EXCEEDED,
            partner_id=partner_id(),
            channel_id=run.channel_id,
            run_id=run.run_id,
            context=AlertContext(
                channel_id=run.channel_id,
                since=run.deadline_at,
                detail=f"still setting_up past its deadline ({run.deadline_at:%Y-%m-%d %H:%M} UTC)",
            ),
        )
    return [run.channel_id for run in runs]


@task(name="announce-transitions", cache_policy=NO_CACHE)
async def announce_transitions(changes: list[SnapshotChange]) -> int:
    """Emit a Prefect event ``d360.channel.<status>`` per observed transition."""
    sent = 0
    for change in changes:
        if change.is_new:
            continue
        emit_event(
            event=f"d360.channel.{change.availability_status or 'unknown'}",
            resource={
                "prefect.resource.id": f"d360.channel.{change.channel_id}",
                "d360.client.id": change.client_id or "unknown",
            },
            payload={
                "channel_id": change.channel_id,
                "client_id": change.client_id,
                "from": change.old_availability_status,
                "to": change.availability_status,
                "status": change.status,
            },
        )
        sent += 1
    return sent


def count_by_status(read: SweepRead) -> dict[str, int]:
    """How many channels of each availability_status the sweep saw."""
    return dict(Counter(channel.availability_status for channel in read.channels.values()))


@task(name="retry-alert-deliveries", cache_policy=NO_CACHE)
async def retry_alert_deliveries() -> int:
    """Resend alert notices whose delivery failed in the last day."""
    since = datetime.now(UTC) - timedelta(days=1)
    return len(alert_service().retry_failed_deliveries(since=since))


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
    from onboarding.receiver import replay_unhandled
    from tasks.intake import dispatch_event

    report = await replay_unhandled(
        history_engine(), dispatch_event, min_age=settings().replay_after
    )
    return report.handled


@task(name="resolve-recovered", cache_policy=NO_CACHE)
async def resolve_recovered(changes: list[SnapshotChange]) -> list[str]:
    """Close alerts that no longer hold: the Partner API answered, and channels became ready."""
    service = alert_service()
    partner = partner_id()
    for kind in (AlertKind.AUTH_FAILED, AlertKind.HUB_UNAVAILABLE):
        service.resolve(kind=kind, partner_id=partner)
    recovered = [
        change.channel_id
        for change in changes
        if change.availability_status == "ready" and not change.is_new
    ]
    for channel_id in recovered:
        service.resolve_channel(partner_id=partner, channel_id=channel_id)
    return recovered


class SweepProgress:
    """The sweep's progress artifact: what share of its phases is done, for the UI."""

    PHASES = ("read", "recorded", "planned", "started", "woken", "replayed", "published")

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
