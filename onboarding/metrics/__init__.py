"""Prometheus metrics of the receiver (``/metrics``, on with ``ONBOARDING_METRICS=true``).

Two sources: gauges and counters computed from the history at scrape time
(:class:`~onboarding.metrics.history.HistoryCollector`), and the webhook handling latency the
receiver measures as it answers (:class:`~onboarding.metrics.http.WebhookTiming`). Labels are
bounded sets (states, outcomes, alert kinds, HTTP status codes): never an id, URL or secret.
"""

from __future__ import annotations

from onboarding.metrics.history import FAILURE_KINDS, SIGNUP_TO_READY_BUCKETS, HistoryCollector
from onboarding.metrics.http import WebhookTiming, add_metrics, metrics_registry

__all__ = [
    "FAILURE_KINDS",
    "SIGNUP_TO_READY_BUCKETS",
    "HistoryCollector",
    "WebhookTiming",
    "add_metrics",
    "metrics_registry",
]
