"""AlertService against the real history (SQLite and PostgreSQL) and a real loopback webhook."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from onboarding.alerts import (
    EVENT_RAISED,
    EVENT_RESOLVED,
    AlertContext,
    AlertKind,
    AlertService,
    Notice,
)
from onboarding.settings import load_settings
from onboarding.store import Alert, AlertDelivery
from tests.fixtures.sinks import SinkServer
from tests.servers import free_port, serve_in_thread

PHONE = "+49 151 23456789"
RUN_URL = "http://127.0.0.1:4200/runs/flow-run/0b6c1e0f"
REPEAT = timedelta(hours=4)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, span: timedelta) -> None:
        self.now += span


class Events:
    """Records what the service hands to its emit callable."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, payload: dict[str, Any]) -> None:
        self.seen.append((name, payload))


MakeService = Callable[..., AlertService]


@pytest.fixture
def clock() -> Clock:
    """A hand-driven clock starting now."""
    return Clock()


@pytest.fixture
def events() -> Events:
    """The emitted events."""
    return Events()


@pytest.fixture
def make_service(engine: Engine, clock: Clock, events: Events) -> MakeService:
    """Builds an AlertService on the test database with the given Apprise URLs."""

    def make(*urls: str, **options: Any) -> AlertService:
        return AlertService(engine, urls=urls, repeat=REPEAT, emit=events, clock=clock, **options)

    return make


def context(channel_id: str = "ch_1", **changes: Any) -> AlertContext:
    """A realistic context for a channel of the client Bäckerei Müller."""
    values: dict[str, Any] = {
        "client_name": "Bäckerei Müller",
        "phone_number": PHONE,
        "channel_id": channel_id,
        "run_url": RUN_URL,
        "detail": "Phone number verification failed",
    }
    return AlertContext(**{**values, **changes})


def deliveries(engine: Engine) -> list[AlertDelivery]:
    """Every delivery row, oldest first."""
    with Session(engine) as session:
        statement = select(AlertDelivery).order_by(
            col(AlertDelivery.attempted_at), col(AlertDelivery.id)
        )
        return list(session.exec(statement))


def alerts(engine: Engine) -> list[Alert]:
    """Every alert row."""
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(col(Alert.id))))


def notices_and_outcomes(engine: Engine) -> list[tuple[str, str]]:
    """``(notice, outcome)`` of every delivery row, oldest first."""
    return [(row.notice, row.outcome) for row in deliveries(engine)]


def retried_ok(service: AlertService, *, since: datetime) -> list[bool]:
    """Retry the failed deliveries since ``since``; whether each retry went through."""
    return [result.ok for result in service.retry_failed_deliveries(since=since)]


def raised_but_undelivered(service: AlertService, engine: Engine) -> AlertDelivery:
    """Raise the channel_error alert; its one delivery must have failed. Returns that row."""
    assert raise_channel_error(service).notice is Notice.RAISED
    [failed] = deliveries(engine)
    assert failed.outcome == "failed"
    return failed


def raise_channel_error(service: AlertService, channel_id: str = "ch_1") -> Any:
    """Raise the channel_error alert for ``channel_id`` of partner p1."""
    return service.raise_alert(
        kind=AlertKind.CHANNEL_ERROR,
        partner_id="p1",
        channel_id=channel_id,
        context=context(channel_id),
    )


def test_raised_alert_reaches_the_sink_with_what_a_person_needs(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine
) -> None:
    """The first raise notifies with client, masked phone, channel id, run URL and a hint."""
    outcome = raise_channel_error(make_service(alert_sink.url))
    assert outcome.created
    assert outcome.notice is Notice.RAISED
    [body] = alert_sink.received
    text = body["title"] + "\n" + body["message"]
    for expected in ("Bäckerei Müller", "6789", "ch_1", RUN_URL, "setup_info.error"):
        assert expected in text
    assert "23456789" not in text
    assert "Phone number verification failed" in body["message"]
    [row] = deliveries(engine)
    assert (row.alert_id, row.notice, row.outcome) == (outcome.alert_id, "raised", "sent")


def test_same_problem_notifies_once_until_the_repeat_interval(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine, clock: Clock
) -> None:
    """Ten raises of one problem send one notice; after the interval one repeat follows."""
    service = make_service(alert_sink.url)
    outcomes = []
    for _ in range(10):
        outcomes.append(raise_channel_error(service))
        clock.advance(timedelta(minutes=20))
    assert len({o.alert_id for o in outcomes}) == 1
    assert [o.notice for o in outcomes].count(Notice.RAISED) == 1
    assert len(alert_sink.received) == 1
    clock.advance(REPEAT)
    repeat = raise_channel_error(service)
    assert repeat.notice is Notice.REPEAT
    assert raise_channel_error(service).notice is None
    assert [row.notice for row in deliveries(engine)] == ["raised", "repeat"]
    assert "still happening" in alert_sink.received[1]["title"]
    [alert] = alerts(engine)
    assert alert.notify_count == 2


def test_resolve_sends_a_notice_and_closes_the_alert(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine, clock: Clock
) -> None:
    """resolve() closes the open alert and notifies; a later raise opens a new alert."""
    service = make_service(alert_sink.url)
    first = raise_channel_error(service)
    clock.advance(timedelta(hours=1))
    assert service.resolve(kind=AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id="ch_1")
    assert not service.resolve(kind=AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id="ch_1")
    assert alert_sink.received[-1]["title"].startswith("[RESOLVED]")
    assert alert_sink.received[-1]["type"] == "success"
    [alert] = alerts(engine)
    assert alert.resolved_at is not None
    again = raise_channel_error(service)
    assert again.created
    assert again.alert_id != first.alert_id


@pytest.mark.parametrize("kind", [AlertKind.AUTH_FAILED, AlertKind.HUB_UNAVAILABLE])
def test_partner_wide_kinds_group_all_channels(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine, kind: AlertKind
) -> None:
    """auth_failed/hub_unavailable for five channels is one alert and one delivery."""
    service = make_service(alert_sink.url)
    outcomes = [
        service.raise_alert(
            kind=kind, partner_id="p1", channel_id=f"ch_{i}", context=context(f"ch_{i}")
        )
        for i in range(5)
    ]
    assert len({o.alert_id for o in outcomes}) == 1
    assert len(alerts(engine)) == 1
    assert len(deliveries(engine)) == 1
    assert len(alert_sink.received) == 1
    assert "partner p1" in alert_sink.received[0]["title"]


def test_resolve_channel_closes_only_that_channels_alerts(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine
) -> None:
    """A channel becoming ready resolves its channel alerts, not partner-wide or other ones."""
    service = make_service(alert_sink.url)
    raise_channel_error(service, "ch_1")
    raise_channel_error(service, "ch_2")
    service.raise_alert(
        kind=AlertKind.FLOW_CRASHED, partner_id="p1", channel_id="ch_1", context=context()
    )
    service.raise_alert(
        kind=AlertKind.AUTH_FAILED, partner_id="p1", channel_id="ch_1", context=context()
    )
    resolved = service.resolve_channel(partner_id="p1", channel_id="ch_1")
    assert sorted(resolved) == [AlertKind.CHANNEL_ERROR, AlertKind.FLOW_CRASHED]
    still_open = {(a.kind, a.channel_id) for a in alerts(engine) if a.resolved_at is None}
    assert still_open == {("channel_error", "ch_2"), ("auth_failed", None)}


def test_emit_gets_raised_and_resolved_events_without_secrets(
    make_service: MakeService, alert_sink: SinkServer, events: Events
) -> None:
    """The emit callable gets one raised and one resolved event with no URL, token or phone."""
    service = make_service(alert_sink.url)
    raise_channel_error(service)
    raise_channel_error(service)
    service.resolve(kind=AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id="ch_1")
    assert [name for name, _ in events.seen] == [EVENT_RAISED, EVENT_RESOLVED]
    for _, payload in events.seen:
        assert payload["kind"] == "channel_error"
        assert payload["channel_id"] == "ch_1"
        assert {"dedup_key", "severity", "message"} <= payload.keys()
        flat = repr(payload)
        assert "s3cr3t-path-token" not in flat
        assert "23456789" not in flat


def test_a_broken_emitter_does_not_break_the_alert(
    engine: Engine, alert_sink: SinkServer, clock: Clock
) -> None:
    """An emit callable that raises is logged; the alert is still raised and delivered."""

    def broken(name: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("prefect API down")

    service = AlertService(engine, urls=[alert_sink.url], emit=broken, clock=clock)
    assert raise_channel_error(service).notice is Notice.RAISED
    assert len(alert_sink.received) == 1


def test_failing_sink_is_recorded_then_retried(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine, clock: Clock
) -> None:
    """A 500 records 'failed' without raising; retry_failed_deliveries sends it later, once."""
    start = clock.now
    alert_sink.fail_next(1)
    service = make_service(alert_sink.url)
    failed = raised_but_undelivered(service, engine)
    assert "500" in (failed.error or "")
    assert alert_sink.received == []
    clock.advance(timedelta(minutes=1))
    assert retried_ok(service, since=start) == [True]
    assert notices_and_outcomes(engine) == [
        ("raised", "failed"),
        ("raised", "sent"),
    ]
    assert len(alert_sink.received) == 1
    assert service.retry_failed_deliveries(since=start) == []


def test_unreachable_sink_is_retried_once_it_listens(
    make_service: MakeService, engine: Engine, clock: Clock
) -> None:
    """A sink nobody listens on yet records 'failed'; after it starts, the retry reaches it."""
    start = clock.now
    port = free_port()
    service = make_service(f"json://127.0.0.1:{port}/alerts/s3cr3t-path-token")
    failed = raised_but_undelivered(service, engine)
    assert "s3cr3t-path-token" not in (failed.error or "")
    late = SinkServer()
    with serve_in_thread(late.app(), port=port) as base_url:
        late.base_url = base_url
        clock.advance(timedelta(minutes=1))
        assert retried_ok(service, since=start) == [True]
    assert late.received[0]["title"].startswith("[ERROR]")
    assert late.paths == ["/alerts/s3cr3t-path-token"]


def test_retries_stop_at_the_cap(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine, clock: Clock
) -> None:
    """A sink that keeps failing is tried max_attempts times for a notice, then left alone."""
    start = clock.now
    alert_sink.fail_next(100)
    service = make_service(alert_sink.url, max_attempts=3)
    raise_channel_error(service)
    for _ in range(5):
        clock.advance(timedelta(minutes=1))
        service.retry_failed_deliveries(since=start)
    assert [r.outcome for r in deliveries(engine)] == ["failed"] * 3


def test_retry_skips_raised_notices_of_resolved_alerts_but_not_resolve_notices(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine, clock: Clock
) -> None:
    """Once resolved, a failed raised notice is dropped; a failed resolve notice is retried."""
    start = clock.now
    service = make_service(alert_sink.url)
    alert_sink.fail_next(2)
    raise_channel_error(service)
    clock.advance(timedelta(minutes=1))
    service.resolve(kind=AlertKind.CHANNEL_ERROR, partner_id="p1", channel_id="ch_1")
    clock.advance(timedelta(minutes=1))
    assert retried_ok(service, since=start) == [True]
    assert notices_and_outcomes(engine) == [
        ("raised", "failed"),
        ("resolved", "failed"),
        ("resolved", "sent"),
    ]
    assert alert_sink.received[0]["title"].startswith("[RESOLVED]")


def test_two_sinks_two_rows_and_no_url_in_the_history(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine, clock: Clock
) -> None:
    """Each sink gets its own delivery row, naming scheme and host but no path or token."""
    start = clock.now
    first, second = alert_sink.url_for("/a/tok-aaaa-1111"), alert_sink.url_for("/b/tok-bbbb-2222")
    service = make_service(first, second)
    alert_sink.fail_next(1)  # the first sink fails, the second gets it
    raise_channel_error(service)
    rows = deliveries(engine)
    assert sorted(r.outcome for r in rows) == ["failed", "sent"]
    for row in rows:
        assert row.sink == "json://127.0.0.1"
        assert "tok-" not in (row.sink + (row.error or ""))
        assert "/a/" not in (row.error or "")
    clock.advance(timedelta(minutes=1))
    service.retry_failed_deliveries(since=start)
    assert alert_sink.paths == ["/b/tok-bbbb-2222", "/a/tok-aaaa-1111"]


def test_concurrent_raises_of_one_problem_notify_once(
    make_service: MakeService, alert_sink: SinkServer, engine: Engine
) -> None:
    """Eight workers raising the same problem at once produce one alert and one notice."""
    service = make_service(alert_sink.url)
    barrier = threading.Barrier(8)

    def worker() -> Any:
        barrier.wait(timeout=10)
        return raise_channel_error(service)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: worker(), range(8)))
    assert len({o.alert_id for o in outcomes}) == 1
    assert sum(o.created for o in outcomes) == 1
    assert [o.notice for o in outcomes if o.notice] == [Notice.RAISED]
    assert len(alert_sink.received) == 1
    assert len(alerts(engine)) == 1


def test_from_settings_takes_urls_and_repeat(engine: Engine, alert_sink: SinkServer) -> None:
    """ONBOARDING_ALERT_URLS and ONBOARDING_ALERT_REPEAT configure the service."""
    settings = load_settings(
        alert_urls=f"{alert_sink.url_for('/x/tok1')} , {alert_sink.url_for('/y/tok2')}",
        alert_repeat=600,
    )
    service = AlertService.from_settings(settings, engine)
    assert service.repeat == timedelta(minutes=10)
    assert len(service.notifier.fingerprints) == 2
    assert "tok" not in repr(service)
