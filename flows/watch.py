"""``watch-channels``: the scheduled sweep that makes onboarding correct when webhooks are not.

Reads like the procedure: look at the partner's channels in a few batched calls, write down what
changed, then start the onboardings nobody started, wake the ones whose channel settled, alert on
the late ones, and retry what failed before (inbox events, alert deliveries).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from tasks.alerting import alert_on_flow_failure
from tasks.sweep import (
    SweepProgress,
    SweepSummary,
    alert_overdue,
    announce_transitions,
    close_orphaned,
    count_by_status,
    plan_next_steps,
    publish_overview,
    read_channels,
    record_sweep,
    replay_inbox,
    resolve_recovered,
    retry_alert_deliveries,
    revive_stalled,
    start_onboardings,
    wake_onboardings,
)

__all__ = ["watch_channels"]


def _sweep_name() -> str:
    return f"sweep-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@flow(
    name="watch-channels",
    flow_run_name=_sweep_name,
    on_failure=[alert_on_flow_failure],
    on_crashed=[alert_on_flow_failure],
)
async def watch_channels() -> SweepSummary:
    """Sweep the partner's channels once and reconcile the onboardings with what they say."""
    progress = await SweepProgress.start()
    seen = await read_channels()
    await progress.done("read")
    changes = await record_sweep(seen)
    await resolve_recovered(changes)
    await progress.done("recorded")
    plan = await plan_next_steps(seen)
    await progress.done("planned")

    started = await start_onboardings(plan.start)
    await progress.done("started")
    offline = started.prefect_note is not None
    woken = await wake_onboardings(plan.wake + plan.overdue, dry_run=offline)
    revived = [] if offline else await revive_stalled()
    closed = [] if offline else await close_orphaned()
    overdue = await alert_overdue(plan.overdue)
    await progress.done("woken")
    replayed = await replay_inbox()
    resent = await retry_alert_deliveries()
    await announce_transitions(changes)
    await progress.done("replayed")

    summary = SweepSummary(
        seen=count_by_status(seen),
        transitions=sum(1 for change in changes if not change.is_new),
        started=started.started,
        would_start=started.would_start,
        woken=woken.woken,
        revived=revived,
        closed=closed,
        would_wake=woken.would_wake,
        overdue=overdue,
        missing=seen.missing,
        replayed=replayed,
        alert_retries=resent,
        prefect_note=started.prefect_note,
    )
    await publish_overview(summary)
    await progress.done("published")
    return summary
