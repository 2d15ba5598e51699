"""`/metrics` on the receiver: Prometheus text, numbers taken from a real onboarding history."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from flows.onboard import onboard_channel
from onboarding.receiver import create_app_from_settings
from onboarding.settings import load_settings
from onboarding.store import session_scope, start_or_get_run
from onboarding.store.types import utcnow
from tests.receiver.support import TOKEN, envelope, serve_receiver

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(base: str) -> tuple[str, Samples]:
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics_env(onboarding_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The onboarding environment with metrics on and this module's webhook token."""
    monkeypatch.setenv("ONBOARDING_METRICS", "true")
    monkeypatch.setenv("ONBOARDING_WEBHOOK_TOKEN", TOKEN)


async def test_metrics_after_a_demo_like_onboarding(
    metrics_env: None, sandbox, engine: Engine
) -> None:
    """One onboarding completes, one fails on a channel error, one waits; five webhooks arrive.
    The scrape says exactly that, and holds no id and no token."""
    ready = sandbox.create_channel(settle_after=0.5, settle_to="ready")
    broken = sandbox.create_channel(availability_status="error", status="error")
    assert (
        await onboard_channel(ready["id"], ready["client_id"], return_state=True)
    ).is_completed()
    assert (await onboard_channel(broken["id"], broken["client_id"], return_state=True)).is_failed()
    with session_scope(engine) as session:
        start_or_get_run(
            session,
            partner_id=sandbox.partner_id,
            channel_id="waiting-channel-1",
            client_id="waiting-client-1",
            trigger="webhook",
            deadline_seconds=86_400,
            now=utcnow() - timedelta(seconds=600),
        )
    app = create_app_from_settings(load_settings(), handoff=None, engine=engine)
    with serve_receiver(app) as base:
        hook = f"{base}/hooks/360dialog/{TOKEN}"
        posts = [
            (hook, envelope("channel_created", id="ch-a", client_id="cl-a")),
            (hook, envelope("channel_ready", id="ch-b", client_id="cl-b")),
            (hook, envelope("no_such_event", id="ch-c")),
            (hook, b"{not json"),
            (f"{base}/hooks/360dialog/wrong-token", envelope()),
        ]
        async with httpx.AsyncClient(timeout=15) as http:
            statuses = [(await http.post(url, content=body)).status_code for url, body in posts]
        assert statuses == [202, 202, 202, 400, 404]
        text, samples = await _scrape(base)

    assert _value(samples, "onboarding_runs", state="completed") == 1
    assert _value(samples, "onboarding_runs", state="failed") == 1
    assert _value(samples, "onboarding_runs", state="pending") == 1
    assert _value(samples, "onboarding_runs", state="timed_out") == 0
    assert 600 <= _value(samples, "onboarding_oldest_waiting_age_seconds") < 3600
    assert _value(samples, "onboarding_completions_total") == 1
    assert _value(samples, "onboarding_failures_total", reason="channel_error") == 1
    assert _value(samples, "onboarding_failures_total", reason="other") == 0
    assert _value(samples, "onboarding_signup_to_ready_seconds_count") == 1
    assert _value(samples, "onboarding_signup_to_ready_seconds_bucket", le="60.0") == 1
    assert _value(samples, "onboarding_signup_to_ready_seconds_sum") > 0
    assert _value(samples, "onboarding_inbox_events", outcome="accepted") == 2
    assert _value(samples, "onboarding_inbox_events", outcome="ignored") == 1
    assert _value(samples, "onboarding_inbox_events", outcome="rejected") == 1
    assert _value(samples, "onboarding_inbox_unhandled") == 2
    assert _value(samples, "onboarding_webhook_handling_seconds_count", status="202") == 3
    assert _value(samples, "onboarding_webhook_handling_seconds_count", status="400") == 1
    assert _value(samples, "onboarding_webhook_handling_seconds_count", status="404") == 1
    assert _value(samples, "onboarding_alerts_open", kind="channel_error", severity="error") == 1
    for secret_or_id in (TOKEN, ready["id"], broken["id"], ready["client_id"], "ch-a", "waiting-c"):
        assert secret_or_id not in text


def test_metrics_are_off_by_default(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ONBOARDING_METRICS the receiver has no /metrics (404) and still takes webhooks."""
    monkeypatch.delenv("ONBOARDING_METRICS", raising=False)
    monkeypatch.setenv("ONBOARDING_WEBHOOK_TOKEN", TOKEN)
    app = create_app_from_settings(load_settings(), handoff=None, engine=engine)
    with serve_receiver(app) as base:
        assert httpx.get(f"{base}/metrics").status_code == 404
        hook = f"{base}/hooks/360dialog/{TOKEN}"
        assert httpx.post(hook, content=envelope()).status_code == 202
