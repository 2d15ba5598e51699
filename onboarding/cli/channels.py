"""`onboarding channels`: list the partner's channels straight from the Partner API."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from onboarding.hub import Channel

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `channels` command to ``app``."""

    @app.command()
    def channels(
        status: str | None = typer.Option(
            None, "--status", help="Only this availability_status (ready, setting_up, error)."
        ),
        client: str | None = typer.Option(None, "--client", help="Only this client id."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array for scripts."),
    ) -> None:
        """List the partner's channels as the Partner API sees them now."""
        from onboarding.cli._common import friendly_errors, print_json

        filters = {
            key: value
            for key, value in (("availability_status", status), ("client_id", client))
            if value
        }
        with friendly_errors():
            found = asyncio.run(_fetch_channels(filters))
        if as_json:
            print_json([channel.model_dump(mode="json") for channel in found])
        else:
            _print_table(found)


async def _fetch_channels(filters: dict[str, Any]) -> list[Channel]:
    """Every channel matching ``filters``, newest-modified first."""
    from onboarding.hub import HubClient
    from onboarding.settings import load_hub_settings

    async with HubClient.from_settings(load_hub_settings()) as hub:
        return [
            channel async for channel in hub.iter_channels(filters=filters, sort="-modified_at")
        ]


def _print_table(found: list[Channel]) -> None:
    """A rich table: id, client, masked phone, status, availability, modified."""
    from rich.table import Table

    from onboarding.cli._common import console
    from onboarding.escaping import plain

    table = Table(title=f"{len(found)} channel(s)")
    for column in ("id", "client", "phone", "status", "availability", "modified"):
        # ids and numbers must stay whole to be copied; the other columns may wrap.
        table.add_column(column, no_wrap=column in ("id", "phone"))
    for channel in found:
        availability = plain(channel.availability_status or "")
        if channel.is_unknown_status:
            availability = plain(f"{channel.availability_status} (unknown)", style="yellow")
        table.add_row(
            plain(channel.id),
            plain(channel.client_name or channel.client_id or ""),
            plain(channel.masked_phone),
            plain(channel.status or ""),
            availability,
            plain(channel.modified_at or ""),
        )
    console.print(table)
