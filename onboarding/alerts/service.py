"""The alert service: one alert per problem, notified, repeated, resolved, every attempt recorded.

``raise_alert`` and ``resolve`` never raise because of a sink: a failing sink is recorded as a
``failed`` delivery and sent again by :meth:`AlertService.retry_failed_deliveries`, which the
watcher calls each sweep. Database errors do propagate (the history is the source of truth).
Network sends happen outside database transactions. Prefect is not imported: events go through
the ``emit`` callable the tasks layer passes in (it wraps ``prefect.events.emit_event``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session

from onboarding import store
from onboarding.alerts.delivery import DeliveryResult, Notifier
from onboarding.alerts.kinds import AlertKind, dedup_key, kind_info
from onboarding.alerts.messages import AlertContext, Message, render, summary
from onboarding.alerts.policy import Notice, decide
from onboarding.alerts.retry import deliveries_of, pending_retries
from onboarding.alerts.view import AlertView, notify_type

if TYPE_CHECKING:
    from onboarding.settings import Settings

__all__ = [
    "EVENT_RAISED",
    "EVENT_RESOLVED",
    "AlertOutcome",
    "AlertService",
    "Clock",
    "Emit",
    "SessionFactory",
]

log = logging.getLogger(__name__)

DELIVERY_MAX_ATTEMPTS = 5  # failed sends of one notice to one sink before it is given up
EVENT_RAISED = "onboarding.alert.raised"
EVENT_RESOLVED = "onboarding.alert.resolved"

Clock = Callable[[], datetime]
Emit = Callable[[str, dict[str, Any]], None]
SessionFactory = Callable[[], AbstractContextManager[Session]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    """What one ``raise_alert`` call did: which alert, whether it is new, which notice went out."""

    alert_id: int
    dedup_key: str
    created: bool
    notice: Notice | None
    deliveries: tuple[DeliveryResult, ...] = field(default=())

    @property
    def notified(self) -> bool:
        """True when a notice was sent (to however many sinks accepted it)."""
        return self.notice is not None


class AlertService:
    """Raises, repeats and resolves alerts against the history and delivers them to Apprise URLs."""

    def __init__(
        self,
        db: Engine | SessionFactory,
        *,
        urls: Iterable[str] = (),
        repeat: timedelta = timedelta(hours=4),
        emit: Emit | None = None,
        clock: Clock = _utcnow,
        max_attempts: int = DELIVERY_MAX_ATTEMPTS,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
    ) -> None:
        if isinstance(db, Engine):
            engine = db
            self._sessions: SessionFactory = lambda: store.session_scope(engine)
        else:
            self._sessions = db
        self.notifier = Notifier(urls, connect_timeout=connect_timeout, read_timeout=read_timeout)
        self.repeat = repeat
        self.max_attempts = max_attempts
        self._emit = emit
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        db: Engine | SessionFactory,
        *,
        emit: Emit | None = None,
        clock: Clock = _utcnow,
    ) -> AlertService:
        """A service with the URLs and repeat interval of ``settings`` (``ONBOARDING_ALERT_*``)."""
        return cls(
            db,
            urls=settings.alert_url_list,
            repeat=timedelta(seconds=settings.alert_repeat),
            emit=emit,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"AlertService(sinks={self.notifier.sinks!r}, repeat={self.repeat})"

    def raise_alert(
        self,
        *,
        kind: AlertKind | str,
        partner_id: str,
        channel_id: str | None = None,
        run_id: int | None = None,
        context: AlertContext | None = None,
    ) -> AlertOutcome:
        """Record that a problem holds and notify if it is new or due for a repeat.

        Partner-wide kinds (``auth_failed``, ``hub_unavailable``) share one alert across every
        channel of the partner; the others are one alert per (kind, channel).
        """
        kind = AlertKind(kind)
        info = kind_info(kind)
        key = dedup_key(kind, partner_id=partner_id, channel_id=channel_id)
        context = context or AlertContext()
        if channel_id and not context.channel_id:
            context = context.model_copy(update={"channel_id": channel_id})
        now = self._clock()
        with self._sessions() as session:
            alert, created = store.open_alert(
                session,
                dedup_key=key,
                kind=str(kind),
                severity=str(info.severity),
                partner_id=partner_id,
                channel_id=None if info.partner_wide else channel_id,
                run_id=run_id,
                message=summary(kind, context),
                details=context.to_details(),
                now=now,
            )
            view = AlertView.of(alert)
            notice = decide(None if created else alert, now=now, repeat=self.repeat)
            if notice is not None:
                # Claimed before sending, so a concurrent raiser sees it as notified.
                store.note_alert_notified(session, alert_id=view.id, at=now)
        if notice is None:
            return AlertOutcome(view.id, key, created, None)
        # The notice describes what the raiser knows now, not the alert's first details.
        view = replace(view, context=context, message=summary(kind, context))
        results = self._deliver(view, notice, now)
        if notice is Notice.RAISED:
            self._send_event(EVENT_RAISED, view, notice)
        return AlertOutcome(view.id, key, created, notice, tuple(results))

    def resolve(
        self, *, kind: AlertKind | str, partner_id: str, channel_id: str | None = None
    ) -> bool:
        """Close the open alert of this problem, send a resolve notice; False if none is open."""
        key = dedup_key(kind, partner_id=partner_id, channel_id=channel_id)
        with self._sessions() as session:
            alert = store.get_open_alert(session, dedup_key=key)
            alert_id = None if alert is None else alert.id
        return alert_id is not None and self._resolve_one(alert_id)

    def resolve_channel(self, *, partner_id: str, channel_id: str) -> list[AlertKind]:
        """Resolve every open channel-scoped alert of ``channel_id`` (e.g. once it is ready).

        Partner-wide alerts stay open: one ready channel says nothing about the others.
        Returns the kinds that were resolved.
        """
        with self._sessions() as session:
            ids = [
                (view.id, view.kind)
                for view in map(AlertView.of, store.open_alerts(session, channel_id=channel_id))
                if view.partner_id == partner_id and not kind_info(view.kind).partner_wide
            ]
        return [kind for alert_id, kind in ids if self._resolve_one(alert_id)]

    def retry_failed_deliveries(self, *, since: datetime) -> list[DeliveryResult]:
        """Send again the notices whose latest attempt to a sink failed at or after ``since``.

        Only sinks still configured are retried, at most ``max_attempts`` failures per notice and
        sink; raised/repeat notices of alerts resolved since are dropped (the resolve notice
        says it all). Returns the new attempts' results; like ``raise_alert`` it never raises
        because of a sink.
        """
        with self._sessions() as session:
            failed = store.failed_deliveries(session, since=since)
            alert_ids = sorted({row.alert_id for row in failed})
            if not alert_ids:
                return []
            rows = deliveries_of(session, alert_ids=alert_ids)
            views = {
                alert.id: AlertView.of(alert)
                for alert in (session.get(store.Alert, i) for i in alert_ids)
                if alert is not None and alert.id is not None
            }
            latest = max(row.attempted_at for row in rows)
        due = pending_retries(
            rows,
            resolved={i: view.resolved_at is not None for i, view in views.items()},
            configured=self.notifier.fingerprints,
            max_attempts=self.max_attempts,
        )
        # A retry batch must be later than the batch it retries, even on a coarse clock.
        now = max(self._clock(), latest + timedelta(microseconds=1))
        batches: dict[tuple[int, Notice], list[str]] = {}
        for item in due:
            batches.setdefault((item.alert_id, item.notice), []).append(item.fingerprint)
        sent: list[DeliveryResult] = []
        for (alert_id, notice), marks in batches.items():
            if (view := views.get(alert_id)) is None:
                continue
            message = self._message(view, notice, now)
            results = [
                result
                for mark in marks
                if (
                    result := self.notifier.send_to(
                        mark, message, notify_type=notify_type(view, notice)
                    )
                )
            ]
            self._record(alert_id, notice, results, now)
            sent.extend(results)
        return sent

    def _resolve_one(self, alert_id: int) -> bool:
        now = self._clock()
        with self._sessions() as session:
            alert = session.get(store.Alert, alert_id)
            if alert is None or alert.resolved_at is not None:
                return False
            view = AlertView.of(store.resolve_alert(session, alert_id=alert_id, at=now))
        self._deliver(view, Notice.RESOLVED, now)
        self._send_event(EVENT_RESOLVED, view, Notice.RESOLVED)
        return True

    def _message(self, view: AlertView, notice: Notice, now: datetime) -> Message:
        return render(
            notice,
            kind=view.kind,
            partner_id=view.partner_id,
            context=view.context,
            first_raised_at=view.first_raised_at,
            now=now,
            repeat=self.repeat,
            dedup_key=view.dedup_key,
            resolved_at=view.resolved_at,
        )

    def _deliver(self, view: AlertView, notice: Notice, now: datetime) -> list[DeliveryResult]:
        """Send one notice to every sink, then record one delivery row per sink."""
        message = self._message(view, notice, now)
        results = self.notifier.send_all(message, notify_type=notify_type(view, notice))
        self._record(view.id, notice, results, now)
        return results

    def _record(
        self, alert_id: int, notice: Notice, results: list[DeliveryResult], at: datetime
    ) -> None:
        """One delivery row per result, all stamped ``at`` (one notice is one batch)."""
        if not results:
            return
        with self._sessions() as session:
            for result in results:
                if not result.ok:
                    log.warning(
                        "alert %s: delivery to %s failed: %s", alert_id, result.sink, result.error
                    )
                store.record_delivery(
                    session,
                    alert_id=alert_id,
                    sink=result.sink,
                    notice=str(notice),
                    outcome="sent" if result.ok else "failed",
                    error=result.error,
                    at=at,
                )

    def _send_event(self, name: str, view: AlertView, notice: Notice) -> None:
        """Hand the event to ``emit``; a failing emitter is logged, never raised."""
        if self._emit is None:
            return
        payload = {
            "alert_id": view.id,
            "kind": str(view.kind),
            "dedup_key": view.dedup_key,
            "partner_id": view.partner_id,
            "channel_id": view.channel_id or view.context.channel_id,
            "severity": view.severity,
            "message": view.message,
            "notice": str(notice),
        }
        try:
            self._emit(name, payload)
        except Exception:
            log.exception("alert %s: emitting %s failed", view.id, name)
