"""``watch-channels``: the scheduled sweep that makes onboarding correct when webhooks are not.

Reads like the procedure: look at the partner's channels in a few batched calls, write down what
changed, then reconcile every onboarding with it (start, wake, adopt, cancel, alert), and retry what
failed before (inbox events, alert deliveries).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from tasks.alerting import alert_on_flow_failure
from tasks.sweep import (
    SweepProgress,
    SweepSummary,
    close_orphaned,
    count_by_status,
    publish_overview,
    read_channels,
    reconcile_channels,
    record_sweep,
    replay_inbox,
    resolve_recovered,
    retry_alert_deliveries,
    revive_stalled,
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

    done = await reconcile_channels(seen)
    offline = done.prefect_note is not None
    revived = [] if offline else await revive_stalled()
    closed = [] if offline else await close_orphaned()
    await progress.done("reconciled")

    replayed = await replay_inbox()
    resent = await retry_alert_deliveries()
    await progress.done("replayed")

    summary = SweepSummary(
        **dict(done),
        seen=count_by_status(seen),
        transitions=sum(1 for change in changes if not change.is_new),
        revived=revived,
        closed=closed,
        missing=seen.missing,
        replayed=replayed,
        alert_retries=resent,
    )
    await publish_overview(summary)
    await progress.done("published")
    return summary
