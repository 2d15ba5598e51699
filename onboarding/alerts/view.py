"""An alert as the service carries it between sessions, and the Apprise type of its notices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from onboarding.alerts.kinds import AlertKind
from onboarding.alerts.messages import AlertContext
from onboarding.alerts.policy import Notice

__all__ = ["AlertView", "notify_type"]

_NOTIFY_TYPE = {"critical": "failure", "error": "failure", "warning": "warning"}


@dataclass(frozen=True, slots=True)
class AlertView:
    """The columns of an alert needed after its session has closed."""

    id: int
    dedup_key: str
    kind: AlertKind
    severity: str
    partner_id: str
    channel_id: str | None
    message: str
    context: AlertContext
    first_raised_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, alert: Any) -> AlertView:
        """Copy the columns out of a store ``Alert`` (while its session is open)."""
        assert alert.id is not None
        return cls(
            id=alert.id,
            dedup_key=alert.dedup_key,
            kind=AlertKind(alert.kind),
            severity=alert.severity,
            partner_id=alert.partner_id,
            channel_id=alert.channel_id,
            message=alert.message,
            context=AlertContext.from_details(alert.details),
            first_raised_at=alert.first_raised_at,
            resolved_at=alert.resolved_at,
        )


def notify_type(view: AlertView, notice: Notice) -> str:
    """Apprise's notify type: success for a resolve, else by severity."""
    if notice is Notice.RESOLVED:
        return "success"
    return _NOTIFY_TYPE.get(view.severity, "failure")
