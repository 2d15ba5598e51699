"""Reconcile: observations in, the lifecycle's decisions carried out against history and Prefect.

Webhooks, the signup redirect and the sweep all come here with :class:`Signal` values (a channel
and an observation of it). One pass loads what the history knows about those channels, asks
:func:`onboarding.lifecycle.decide` what to do, and does it in batches: adopt, cancel, open parked
runs, re-create lost flow runs, wake (never more than ``ONBOARDING_WAKE_LIMIT`` due or executing
at once, whoever wakes), alert. The flow run's own decisions (finish, fail, wait again) are carried
out by the flow, through its tasks.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect.states import Completed, State
from pydantic import BaseModel, Field

from onboarding.alerts import AlertContext, AlertKind
from onboarding.history import Claim, active_view, history_key, policy
from onboarding.lifecycle import (
    Action,
    Decision,
    FlowRunGone,
    History,
    Observation,
    decide,
)
from onboarding.orchestration.flow_runs import (
    NoDeployment,
    ParkedRun,
    cancel_flow_runs,
    count_in_flight,
    create_parked_runs,
    onboarding_deployment_id,
    run_tags,
    wake_runs,
)
from onboarding.orchestration.outcomes import announce, settle_onboarding
from onboarding.runtime import alert_service, history_engine, partner_id, settings
from onboarding.store import (
    OnboardingRun,
    RunState,
    active_runs_of,
    adopt_channels,
    attach_flow_run,
    get_installation,
    latest_finished_states,
    note_sweep,
    note_wake_requests,
    session_scope,
    start_runs,
    update_run,
)

__all__ = ["Reconciled", "Signal", "hand_over", "reconcile", "wake_within_limit"]


@dataclass(frozen=True)
class Signal:
    """One observation of one channel."""

    channel_id: str
    client_id: str | None
    observation: Observation


class Reconciled(BaseModel):
    """What one reconciliation did, by channel id (and why nothing, where nothing)."""

    started: list[str] = Field(default_factory=list)
    woken: list[str] = Field(default_factory=list)
    adopted: list[str] = Field(default_factory=list)
    cancelled: list[str] = Field(default_factory=list)
    reopened: list[str] = Field(default_factory=list)
    alerted: list[str] = Field(default_factory=list)
    overdue: list[str] = Field(default_factory=list)  # alerted as past their set-up deadline
    would_start: list[str] = Field(default_factory=list)
    would_wake: list[str] = Field(default_factory=list)
    prefect_note: str | None = None
    reasons: dict[str, list[str]] = Field(default_factory=dict)


async def reconcile(
    signals: Sequence[Signal], *, trigger: str, swept_at: datetime | None = None
) -> Reconciled:
    """Decide on every signal and carry the decisions out; returns what was done.

    ``swept_at`` marks a sweep that began reading the Partner API then: the installation's first
    sweep adopts every channel already ready. Raises when Prefect or the history cannot be
    reached, so an inbox event stays for the replay.
    """
    ids = list(dict.fromkeys(signal.channel_id for signal in signals))
    with session_scope(history_engine()) as session:
        installation = get_installation(session)
        active = active_runs_of(session, channel_ids=ids)
        finished = latest_finished_states(session, channel_ids=ids)
        installed_at = installation.first_sweep_at
        install_id = installation.id
    clients = {s.channel_id: s.client_id for s in signals if s.client_id}
    signals = [signal for signal in signals if not _old_news(signal, active)]
    # An active run without a flow run (its creation failed half-way) counts as lost.
    orphans = [
        Signal(cid, None, FlowRunGone(False)) for cid, run in active.items() if not run.flow_run_id
    ]
    rules = policy()
    plan: dict[Action, dict[str, Decision]] = defaultdict(dict)
    done = Reconciled()
    for signal in [*signals, *orphans]:
        run = active.get(signal.channel_id)
        history = History(
            active=active_view(run) if run else None,
            finished=finished.get(signal.channel_id),
            installed_at=installed_at,
        )
        for decision in decide(signal.observation, history, rules):
            if decision.action is Action.NOTHING:
                done.reasons.setdefault(signal.channel_id, []).append(decision.reason)
            else:
                plan[decision.action].setdefault(signal.channel_id, decision)
    await _carry_out(plan, active, clients, install_id, trigger, done)
    if swept_at is not None:
        with session_scope(history_engine()) as session:
            note_sweep(session, at=swept_at)
    return done


def _old_news(signal: Signal, active: dict[str, OnboardingRun]) -> bool:
    """A flow run found gone that the onboarding has left since (it handed over, say)."""
    gone = signal.observation
    if not isinstance(gone, FlowRunGone) or gone.flow_run_id is None:
        return False
    run = active.get(signal.channel_id)
    return run is None or run.flow_run_id != gone.flow_run_id


async def _carry_out(
    plan: dict[Action, dict[str, Decision]],
    active: dict[str, OnboardingRun],
    clients: dict[str, str | None],
    install_id: str,
    trigger: str,
    done: Reconciled,
) -> None:
    """Adopt, cancel, open, re-create, wake and alert, in that order, each as one batch."""
    partner = partner_id()
    cancelled = set(plan[Action.CANCEL])
    if plan[Action.ADOPT]:
        with session_scope(history_engine()) as session:
            adopted = adopt_channels(
                session,
                partner_id=partner,
                channels=[(cid, clients.get(cid) or "unknown") for cid in plan[Action.ADOPT]],
            )
        announce(adopted)
        done.adopted += list(plan[Action.ADOPT])
    if cancelled:
        await _cancel(plan[Action.CANCEL], active, partner)
        done.cancelled += list(cancelled)
    wake = [cid for cid in plan[Action.WAKE] if cid not in cancelled and cid in active]
    needs_prefect = wake or plan[Action.OPEN] or plan[Action.OPEN_NOW] or plan[Action.REOPEN]
    try:
        if needs_prefect:
            await onboarding_deployment_id()
    except NoDeployment as exc:
        done.prefect_note = str(exc)
        done.would_start += [*plan[Action.OPEN], *plan[Action.OPEN_NOW]]
        done.would_wake += wake
    else:
        await _open(plan, clients, install_id, trigger, partner, active, done)
        await _wake(wake, active, partner, done)
    for channel_id, decision in plan[Action.ALERT].items():
        run = active.get(channel_id)
        await asyncio.to_thread(
            alert_service().raise_alert,
            kind=decision.alert or "flow_crashed",
            partner_id=partner,
            channel_id=channel_id,
            run_id=run.id if run else None,
            context=AlertContext(
                channel_id=channel_id,
                client_name=run.client_name if run else None,
                since=run.started_at if run else None,
                detail=decision.reason,
            ),
        )
        done.alerted.append(channel_id)
        if decision.alert == AlertKind.SETUP_DEADLINE_EXCEEDED:
            done.overdue.append(channel_id)


async def _cancel(
    decisions: dict[str, Decision], active: dict[str, OnboardingRun], partner: str
) -> None:
    """End the channels' active runs ``cancelled``, their flow runs too; no alert, no follow-up.

    The flow run cancelled is the one the run ended with (a hand-over may have recorded a new
    one since this reconcile read it).
    """
    flow_run_ids = []
    for channel_id, decision in decisions.items():
        run = active.pop(channel_id)
        ended = settle_onboarding(run_id=run.id, state=RunState.CANCELLED, reason=decision.reason)
        if ended is not None and ended.flow_run_id:
            flow_run_ids.append(ended.flow_run_id)
    await cancel_flow_runs(flow_run_ids, message="onboarding cancelled")
    service = alert_service()
    for channel_id in decisions:
        await asyncio.to_thread(service.resolve_channel, partner_id=partner, channel_id=channel_id)


async def _open(
    plan: dict[Action, dict[str, Decision]],
    clients: dict[str, str | None],
    install_id: str,
    trigger: str,
    partner: str,
    active: dict[str, OnboardingRun],
    done: Reconciled,
) -> None:
    """Open history runs and their parked flow runs; re-create the flow runs Prefect lost."""
    due_now = set(plan[Action.OPEN_NOW])
    to_open = [*plan[Action.OPEN], *plan[Action.OPEN_NOW]]
    deadline = settings().setup_deadline
    with session_scope(history_engine()) as session:
        opened = start_runs(
            session,
            partner_id=partner,
            channels=[(cid, clients.get(cid) or "unknown") for cid in to_open],
            trigger=trigger,
            deadline_seconds=deadline,
        )
        reopen: list[tuple[OnboardingRun, int, str | None]] = []
        for channel_id in plan[Action.REOPEN]:
            run = active.get(channel_id)
            if run is None or run.id is None:
                continue
            attempts = run.attempts + 1 if run.flow_run_id else run.attempts
            # Replaces the flow run found lost, and only that one (see attach_flow_run).
            lost = run.flow_run_id
            reopen.append((update_run(session, run_id=run.id, attempts=attempts), attempts, lost))
        targets = [
            (run, run.attempts, run.channel_id in due_now, run.flow_run_id)
            for run in opened.values()
        ]
        targets += [(run, attempts, False, lost) for run, attempts, lost in reopen]
    if not targets:
        return
    flow_run_ids = await create_parked_runs(
        ParkedRun(
            history_key=history_key(install_id, run.id or 0),
            attempt=attempts,
            channel_id=run.channel_id,
            client_id=run.client_id,
            partner_id=partner,
            trigger=trigger,
            until=run.deadline_at,
            wake_now=now,
        )
        for run, attempts, now, _ in targets
    )
    # Another waker (or the flow run itself) may have moved the onboarding on meanwhile: a
    # flow run that was not recorded is cancelled, and a finished onboarding stays finished.
    redundant = []
    with session_scope(history_engine()) as session:
        for (run, _, now, replacing), flow_run_id in zip(targets, flow_run_ids, strict=True):
            assert run.id is not None
            if attach_flow_run(
                session,
                run_id=run.id,
                flow_run_id=flow_run_id,
                replacing=replacing,
                due_now=now,
            ):
                active[run.channel_id] = run
            else:
                redundant.append(flow_run_id)
    await cancel_flow_runs(redundant, message="its onboarding moved on while it was created")
    done.started += [run.channel_id for run in opened.values()]
    done.reopened += [run.channel_id for run, _, _ in reopen]


async def _wake(
    channel_ids: list[str], active: dict[str, OnboardingRun], partner: str, done: Reconciled
) -> None:
    """Wake the parked runs of ``channel_ids``, within ``ONBOARDING_WAKE_LIMIT``.

    The request is written down first: a run that is executing right now cannot be woken, and
    if it read its channel before this news it runs once more instead of parking
    (:func:`hand_over`).
    """
    runs = {active[cid].id: cid for cid in channel_ids if active[cid].id is not None}
    with session_scope(history_engine()) as session:
        current = note_wake_requests(session, run_ids=list(runs))
    flow_runs = {fid: cid for run_id, cid in runs.items() if (fid := current.get(run_id))}
    woken = await wake_within_limit(list(flow_runs), partner_id=partner)
    done.woken += [flow_runs[flow_run_id] for flow_run_id in woken]


async def wake_within_limit(flow_run_ids: list[str], *, partner_id: str) -> list[str]:
    """Wake parked runs in order while fewer than ``ONBOARDING_WAKE_LIMIT`` are due or executing.

    Every waker (webhook, sweep, signup) comes through here, so a thousand channels settling at
    once leave the rest parked for a later sweep instead of making Prefect poll them all.
    """
    if not flow_run_ids:
        return []
    tags = run_tags(partner_id=partner_id, client_id=None)[:2]
    room = settings().wake_limit - await count_in_flight(tags)
    return await wake_runs(flow_run_ids, limit=max(room, 0))


async def hand_over(claim: Claim, *, until: datetime, reason: str, wakes_seen: int) -> State[Any]:
    """Leave the waiting to a fresh parked flow run of the same onboarding, due at ``until``.

    Supported all the way: this flow run ends ``Completed`` saying whom it handed over to, and
    the new run holds no process until it is woken or ``until`` comes. ``wakes_seen`` is the
    onboarding's count of wake requests taken just before this run last read its channel: one
    asked for since (a webhook that arrived while this run was executing, so it had nothing
    parked to wake) wakes the new run at once. An onboarding ended meanwhile (a cancel) or taken
    over by another flow run keeps that: the new run is cancelled instead of recorded.
    """
    with session_scope(history_engine()) as session:
        run = update_run(session, run_id=claim.run_id, attempts=claim.attempts + 1)
        attempts = run.attempts
    [flow_run_id] = await create_parked_runs(
        [
            ParkedRun(
                history_key=claim.history_key,
                attempt=attempts,
                channel_id=claim.channel_id,
                client_id=claim.client_id,
                partner_id=claim.partner_id,
                trigger="handover",
                until=until,
                message=reason,
            )
        ]
    )
    with session_scope(history_engine()) as session:
        recorded = attach_flow_run(
            session,
            run_id=claim.run_id,
            flow_run_id=flow_run_id,
            replacing=claim.owner_flow_run_id,
            due_now=False,
        )
        run = session.get(OnboardingRun, claim.run_id)
        assert run is not None
        session.refresh(run)  # read after the write; see note_wake_requests
        wakes = run.wake_requests
    if not recorded:
        await cancel_flow_runs(
            [flow_run_id], message="its onboarding moved on while it was created"
        )
        if run.is_active:
            return Completed(
                message=f"{reason}; flow run {run.flow_run_id} took the onboarding over"
            )
        return Completed(message=f"{reason}; the onboarding ended meanwhile ({run.state})")
    if wakes > wakes_seen:
        # Not counted against ONBOARDING_WAKE_LIMIT: it continues a run that was executing.
        await wake_runs([flow_run_id])
        reason = f"{reason}; woken again at once (news arrived while it ran)"
    return Completed(message=f"{reason}: waiting continues in flow run {flow_run_id}")
