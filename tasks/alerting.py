"""Tasks and flow hooks that raise and resolve alerts (policy and delivery live in the core)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from onboarding.alerts import AlertContext, AlertKind, AlertOutcome, kind_info
from onboarding.history import Claim
from onboarding.hub import AuthError, Channel, HubUnavailable, NotFound, RateLimited
from onboarding.orchestration.outcomes import settle_onboarding
from onboarding.runtime import alert_service, history_engine
from onboarding.settings import ConfigError, load_hub_settings
from onboarding.store import RunState, find_runs, session_scope

__all__ = [
    "alert_kind_for",
    "alert_on_flow_failure",
    "raise_alert",
    "resolve_channel_alerts",
]


def _run_url() -> str | None:
    from prefect.runtime import flow_run

    return flow_run.ui_url or None


def _context(claim: Claim, channel: Channel | None, detail: str) -> AlertContext:
    return AlertContext(
        client_name=channel.client_name if channel else None,
        phone_number=channel.phone_number if channel else None,
        channel_id=claim.channel_id,
        since=claim.started_at,
        run_url=_run_url(),
        detail=detail,
    )


@task(name="raise-alert", cache_policy=NO_CACHE)
async def raise_alert(
    claim: Claim, channel: Channel | None, *, kind: AlertKind, detail: str
) -> AlertOutcome:
    """Raise (or repeat, or stay quiet about) an alert for this onboarding."""
    return await asyncio.to_thread(
        alert_service().raise_alert,
        kind=kind,
        partner_id=claim.partner_id,
        channel_id=claim.channel_id,
        run_id=claim.run_id,
        context=_context(claim, channel, detail),
    )


async def resolve_channel_alerts(claim: Claim) -> list[AlertKind]:
    """The channel is ready: close its open alerts with a resolve notice (off the event loop)."""
    return await asyncio.to_thread(
        alert_service().resolve_channel, partner_id=claim.partner_id, channel_id=claim.channel_id
    )


def alert_kind_for(error: BaseException | None) -> AlertKind:
    """Which alert an unexpected failure deserves: credentials, an API outage, a channel the
    Partner API does not find, or a crash."""
    if isinstance(error, AuthError | ConfigError):
        return AlertKind.AUTH_FAILED
    if isinstance(error, NotFound):
        return AlertKind.CHANNEL_NOT_FOUND
    if isinstance(error, HubUnavailable | RateLimited):
        return AlertKind.HUB_UNAVAILABLE
    return AlertKind.FLOW_CRASHED


def alert_on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: a run that failed or crashed outside the procedure's own outcomes alerts once.

    Failures the flow handled itself (channel error, deadline, unknown status) have already
    closed their history run and raised their alert, so they are left alone here.
    """
    channel_id = (flow_run.parameters or {}).get("channel_id")
    reason = state.message or "flow run failed"
    run_id = None
    with session_scope(history_engine()) as session:
        owned = [
            run
            for run in (find_runs(session, channel_id=channel_id, limit=20) if channel_id else [])
            if run.flow_run_id == str(flow_run.id)
        ]
    if owned and not owned[0].is_active:
        return  # the flow settled this run and raised its own alert
    if owned:
        run_id = owned[0].id
        settle_onboarding(run_id=run_id, state=RunState.FAILED, reason=reason)
    partner = _partner_or_none()
    if partner is None:
        return  # no partner configured: the CLI already said what is missing
    kind = alert_kind_for(_exception_of(state))
    if channel_id is None and not kind_info(kind).partner_wide:
        channel_id = flow.name  # the watcher crashed: one alert for the flow, not per channel
    alert_service().raise_alert(
        kind=kind,
        partner_id=partner,
        channel_id=channel_id,
        run_id=run_id,
        context=AlertContext(
            channel_id=channel_id, since=datetime.now(UTC), run_url=_run_url(), detail=reason
        ),
    )


def _exception_of(state: Any) -> BaseException | None:
    """The exception a failed or crashed state carries, if it can be read."""
    from prefect.states import get_state_exception

    try:
        return get_state_exception(state, _sync=True)  # type: ignore[call-arg]
    except Exception:
        return None


def _partner_or_none() -> str | None:
    try:
        return load_hub_settings().partner_id
    except ConfigError:
        return None
