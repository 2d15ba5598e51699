"""A channel's onboarding timeline as markdown: each status, when it began, how long it lasted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from onboarding.text import mask_phone

__all__ = ["TimelineRow", "format_duration", "render_timeline"]

TimelineRow = tuple[datetime, str | None, str | None]  # (observed_at, availability_status, status)


def format_duration(span: timedelta) -> str:
    """``span`` as a short human duration: ``45s``, ``3m 05s``, ``2h 10m``, ``3d 4h``."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def render_timeline(
    *,
    channel_id: str,
    client_name: str | None,
    phone_number: str | None,
    rows: Sequence[TimelineRow],
    outcome: str,
    reason: str | None,
    now: datetime,
) -> str:
    """Markdown for the run's artifact: a header, the outcome, and one table row per status."""
    who = client_name or "unknown client"
    phone = mask_phone(phone_number) or "no number yet"
    lines = [
        f"## Onboarding of channel `{channel_id}`",
        f"**Client:** {who} · **Number:** {phone}",
        "",
        f"**Outcome:** {outcome}" + (f" — {reason}" if reason else ""),
        "",
        "| availability_status | status | since (UTC) | for |",
        "|---|---|---|---|",
    ]
    for index, (since, availability, status) in enumerate(rows):
        until = rows[index + 1][0] if index + 1 < len(rows) else now
        lines.append(
            f"| {availability or '—'} | {status or '—'} | {since:%Y-%m-%d %H:%M:%S} "
            f"| {format_duration(until - since)} |"
        )
    if not rows:
        lines.append("| — | — | — | — |")
    return "\n".join(lines) + "\n"
