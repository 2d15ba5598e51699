"""Alert text a person can act on at 3 a.m.: who, which number, what happened, since when, where
to look and what to check.

Phone numbers are masked (last four digits visible) before they reach a message, an event or the
history: the phone field, and that number wherever it appears in the detail. Everything that came
from outside (client name, channel id, Meta's error text) is escaped for Markdown
(:mod:`onboarding.escaping`) before it enters a notice, which Apprise may turn into HTML. Nothing
here imports Apprise or Prefect.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from onboarding.alerts.kinds import AlertKind, kind_info
from onboarding.alerts.policy import Notice, as_utc
from onboarding.escaping import md, md_code
from onboarding.text import mask_phone, mask_phone_in

__all__ = ["AlertContext", "Message", "format_duration", "mask_phone", "render", "summary"]

_MAX_DETAIL = 500


class AlertContext(BaseModel):
    """What the raiser knows about the problem; every field is optional but the more the better."""

    model_config = ConfigDict(frozen=True)

    client_name: str | None = None
    phone_number: str | None = None
    channel_id: str | None = None
    since: datetime | None = None
    run_url: str | None = None
    detail: str | None = None

    def to_details(self) -> dict[str, Any]:
        """JSON-safe form for the history, with the phone number already masked."""
        data = self.model_dump(mode="json")
        data["phone_number"] = mask_phone(self.phone_number) or None
        if self.detail:
            data["detail"] = mask_phone_in(self.detail, self.phone_number)
        return data

    @classmethod
    def from_details(cls, details: dict[str, Any] | None) -> AlertContext:
        """Rebuild a context stored by :meth:`to_details` (unknown keys are ignored)."""
        fields = cls.model_fields
        return cls.model_validate({k: v for k, v in (details or {}).items() if k in fields})


class Message(BaseModel):
    """A notification's title and body (plain text that also reads as markdown)."""

    model_config = ConfigDict(frozen=True)

    title: str
    body: str


def format_duration(span: timedelta) -> str:
    """``span`` in the two largest units a person reads at a glance: ``3 h 12 min``, ``2 d 4 h``."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{value} {unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0 s"


def _when(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _clip(text: str, limit: int = _MAX_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(kind: AlertKind | str, context: AlertContext) -> str:
    """One line for the history and for events: what went wrong and, if known, the detail."""
    title = kind_info(kind).title
    if not context.detail:
        return title
    return _clip(f"{title}: {mask_phone_in(context.detail, context.phone_number)}")


def _detail(context: AlertContext) -> str:
    """The detail as Markdown: phone number masked, clipped, escaped."""
    return md(_clip(mask_phone_in(context.detail or "", context.phone_number)))


def _subject(kind: AlertKind, partner_id: str, context: AlertContext) -> str:
    if kind_info(kind).partner_wide:
        return f"partner {md(partner_id)}"
    who = md(context.client_name or "unknown client")
    phone = mask_phone(context.phone_number)
    return f"{who} ({md_code(phone)})" if phone else who


def _facts(kind: AlertKind, partner_id: str, context: AlertContext) -> list[str]:
    lines = [
        f"- Client: {md(context.client_name or 'unknown')}",
        f"- Phone: {md_code(mask_phone(context.phone_number) or 'unknown')}",
    ]
    channel = md_code(context.channel_id) if context.channel_id else None
    if kind_info(kind).partner_wide:
        seen = f"first seen on {channel}; " if channel else ""
        lines.append(f"- Channel: {seen}affects every channel of partner {md(partner_id)}")
    else:
        lines.append(f"- Channel: {channel or 'unknown'} (partner {md(partner_id)})")
    lines.append(f"- Prefect run: {md_code(context.run_url) if context.run_url else 'not known'}")
    return lines


def render(
    notice: Notice,
    *,
    kind: AlertKind | str,
    partner_id: str,
    context: AlertContext,
    first_raised_at: datetime,
    now: datetime,
    repeat: timedelta,
    dedup_key: str,
    resolved_at: datetime | None = None,
) -> Message:
    """The title and body for one notice about one alert."""
    kind = AlertKind(kind)
    info = kind_info(kind)
    since = context.since or first_raised_at
    subject = _subject(kind, partner_id, context)
    if notice is Notice.RESOLVED:
        ended = resolved_at or now
        title = f"[RESOLVED] Onboarding: {info.title} — {subject}"
        lines = [
            f"Resolved: {info.title}.",
            "",
            f"- Cleared: {_when(ended)}, after {format_duration(ended - as_utc(since))}",
            *_facts(kind, partner_id, context),
            "",
            f"Alert {md_code(dedup_key)} is closed.",
        ]
        return Message(title=title, body="\n".join(lines))

    prefix = "" if notice is Notice.RAISED else "still happening: "
    title = f"[{info.severity.upper()}] Onboarding: {prefix}{info.title} — {subject}"
    what = _detail(context) if context.detail else info.title
    lines = [
        f"What happened: {what}",
        "",
        *_facts(kind, partner_id, context),
        f"- Since: {_when(since)} ({format_duration(as_utc(now) - as_utc(since))} ago)",
        "",
        f"What to check: {info.hint}",
        "",
        f"Alert {md_code(dedup_key)}, severity {info.severity}. "
        f"Repeats every {format_duration(repeat)} while it lasts; "
        "a resolve notice follows when it clears.",
    ]
    return Message(title=title, body="\n".join(lines))
