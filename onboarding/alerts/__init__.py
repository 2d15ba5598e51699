"""Alerts: one per problem, repeated while it lasts, resolved when it clears, sent via Apprise.

The pieces, each usable alone:

* :mod:`~onboarding.alerts.kinds`     the kinds, their severity/scope/hint, ``dedup_key``;
* :mod:`~onboarding.alerts.policy`    the pure notify-now decision (raised / repeat / quiet);
* :mod:`~onboarding.alerts.messages`  the text a person reads (phone numbers masked, outside
                                       text escaped for Markdown);
* :mod:`~onboarding.alerts.delivery`  one Apprise send per URL, redacted errors, safe sink labels;
* :mod:`~onboarding.alerts.service`   :class:`AlertService`, which joins them to the history.

Importing this package does not import Prefect or Apprise.
"""

from onboarding.alerts.delivery import DeliveryResult, Notifier, send, sink_label
from onboarding.alerts.kinds import AlertKind, KindInfo, Severity, dedup_key, kind_info
from onboarding.alerts.messages import AlertContext, Message, mask_phone, render, summary
from onboarding.alerts.policy import Notice, decide
from onboarding.alerts.service import (
    EVENT_RAISED,
    EVENT_RESOLVED,
    AlertOutcome,
    AlertService,
    Clock,
    Emit,
    SessionFactory,
)

__all__ = [
    "EVENT_RAISED",
    "EVENT_RESOLVED",
    "AlertContext",
    "AlertKind",
    "AlertOutcome",
    "AlertService",
    "Clock",
    "DeliveryResult",
    "Emit",
    "KindInfo",
    "Message",
    "Notice",
    "Notifier",
    "SessionFactory",
    "Severity",
    "decide",
    "dedup_key",
    "kind_info",
    "mask_phone",
    "render",
    "send",
    "sink_label",
    "summary",
]
