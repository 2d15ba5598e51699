"""How an onboarding ends: the one place that writes its final state, and tells Prefect.

Every ending (completed, failed, timed out, cancelled, and adoption, which begins finished) goes
through here: the history run is settled once (the first settle wins; a run already finished is
left as it is) and a Prefect event ``onboarding.channel.<outcome>`` is emitted, with the channel
as its resource and the client as a related one, so a partner can chain a deployment of its own
with a trigger. Events carry ids, states and the reason; never a key.
"""

from __future__ import annotations

from collections.abc import Iterable

from prefect.events import emit_event

from onboarding.runtime import history_engine
from onboarding.store import (
    OnboardingRun,
    RunState,
    get_active_run,
    lock_run,
    session_scope,
    settle_run,
)

__all__ = ["OUTCOME_EVENTS", "announce", "settle_onboarding"]

OUTCOME_EVENTS = {
    RunState.COMPLETED: "onboarding.channel.completed",
    RunState.FAILED: "onboarding.channel.failed",
    RunState.TIMED_OUT: "onboarding.channel.failed",
    RunState.CANCELLED: "onboarding.channel.cancelled",
    RunState.ADOPTED: "onboarding.channel.adopted",
}


def settle_onboarding(
    *,
    run_id: int | None = None,
    channel_id: str | None = None,
    flow_run_id: str | None = None,
    state: RunState,
    reason: str | None = None,
) -> OnboardingRun | None:
    """End the onboarding's history run ``state`` and announce it; None if it had ended already.

    The run is ``run_id``, or the active run of ``channel_id`` owned by ``flow_run_id``. It is
    read locked, so the flow run it returns (``flow_run_id``) is the one it ended with, even if
    a hand-over recorded a new one a moment before.
    """
    with session_scope(history_engine()) as session:
        by_owner = run_id is None and channel_id is not None and flow_run_id is not None
        if run_id is None and channel_id is not None:
            found = get_active_run(session, channel_id=channel_id)
            run_id = found.id if found else None
        run = lock_run(session, run_id=run_id) if run_id is not None else None
        if run is None or run.id is None or not run.is_active:
            return None
        if by_owner and run.flow_run_id != flow_run_id:
            return None  # another flow run owns the onboarding now
        settled = settle_run(
            session,
            run_id=run.id,
            state=state,
            availability_status=run.availability_status,
            failure_reason=reason,
            stage=str(state),
        )
    announce([settled])
    return settled


def announce(runs: Iterable[OnboardingRun]) -> None:
    """Emit each finished run's outcome event (fire-and-forget, as all Prefect events)."""
    for run in runs:
        name = OUTCOME_EVENTS.get(RunState(run.state))
        if name is None:
            continue
        client = run.client_id or "unknown"
        emit_event(
            event=name,
            resource={
                "prefect.resource.id": f"d360.channel.{run.channel_id}",
                "prefect.resource.name": run.channel_id,
                "d360.partner.id": run.partner_id,
            },
            related=[
                {"prefect.resource.id": f"d360.client.{client}", "prefect.resource.role": "client"}
            ],
            payload={
                "channel_id": run.channel_id,
                "client_id": run.client_id,
                "partner_id": run.partner_id,
                "outcome": str(run.state),
                "reason": run.failure_reason,
                "history_run": run.id,
                "flow_run_id": run.flow_run_id,
            },
        )
