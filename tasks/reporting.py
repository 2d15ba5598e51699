"""What onboarding runs leave for people to read in the Prefect UI."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from prefect.artifacts import create_markdown_artifact

from onboarding.hub import Channel
from onboarding.timeline import render_timeline
from tasks.history import Claim, load_timeline

__all__ = ["artifact_key", "publish_timeline"]


def artifact_key(prefix: str, channel_id: str) -> str:
    """An artifact key Prefect accepts (lowercase letters, digits, dashes) for a channel."""
    slug = re.sub(r"[^a-z0-9]+", "-", channel_id.lower()).strip("-")
    return f"{prefix}-{slug}"[:200]


async def publish_timeline(
    claim: Claim, channel: Channel | None, *, outcome: str, reason: str | None = None
) -> None:
    """Publish the channel's timeline and the run's outcome as a markdown artifact of the run.

    A plain function, not a task: it writes one artifact, which belongs to the flow run either
    way, and a retry has nothing to fix; a task run would add three state round trips.
    """
    markdown = render_timeline(
        channel_id=claim.channel_id,
        client_name=channel.client_name if channel else None,
        phone_number=channel.phone_number if channel else None,
        rows=load_timeline(claim.channel_id),
        outcome=outcome,
        reason=reason,
        now=datetime.now(UTC),
    )
    await create_markdown_artifact(
        key=artifact_key("timeline", claim.channel_id),
        markdown=markdown,
        description=f"Onboarding timeline of channel {claim.channel_id}: {outcome}",
    )
