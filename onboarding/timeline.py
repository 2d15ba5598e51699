"""A channel's onboarding timeline as markdown: each status, when it began, how long it lasted.

Every value from outside (channel id, client name, statuses, the failure reason) is escaped for
Markdown; the phone number is masked, also where it appears in the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from onboarding.escaping import md, md_cell, md_code
from onboarding.text import mask_phone, mask_phone_in

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
    who = md(client_name or "unknown client")
    phone = md_code(mask_phone(phone_number)) if phone_number else "no number yet"
    why = f" — {md(mask_phone_in(reason, phone_number))}" if reason else ""
    lines = [
        f"## Onboarding of channel {md_code(channel_id)}",
        f"**Client:** {who} · **Number:** {phone}",
        "",
        f"**Outcome:** {md(outcome)}{why}",
        "",
        "| availability_status | status | since (UTC) | for |",
        "|---|---|---|---|",
    ]
    for index, (since, availability, status) in enumerate(rows):
        until = rows[index + 1][0] if index + 1 < len(rows) else now
        lines.append(
            f"| {md_cell(availability or '—')} | {md_cell(status or '—')} "
            f"| {since:%Y-%m-%d %H:%M:%S} "
            f"| {format_duration(until - since)} |"
        )
    if not rows:
        lines.append("| — | — | — | — |")
    return "\n".join(lines) + "\n"
