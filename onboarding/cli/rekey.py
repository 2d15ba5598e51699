"""`onboarding rekey CHANNEL_ID`: rotate a channel's Messaging API key on purpose."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `rekey` command to ``app``."""

    @app.command()
    def rekey(
        channel_id: str = typer.Argument(..., help="The channel whose key to rotate."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """Create a new Messaging API key for the channel and deliver it to your callback.

        This is the one way to rotate a key: creating a key revokes the channel's existing
        keys, so the old key stops working at once.
        """
        import asyncio

        from onboarding.cli._common import EXIT_FAILED, console, fail, friendly_errors
        from onboarding.escaping import markup_text
        from onboarding.rekey import RekeyFailed, rekey_channel

        console.print(
            f"Rotating the key of channel {markup_text(channel_id)}: its current Messaging API "
            "key stops working at once, and the new one goes to ONBOARDING_CALLBACK_URL.",
            highlight=False,
        )
        if not yes and not typer.confirm("Rotate the key?", default=False):
            raise typer.Exit(1)
        with friendly_errors():
            try:
                result = asyncio.run(rekey_channel(channel_id))
            except RekeyFailed as exc:
                fail(str(exc), EXIT_FAILED)
        console.print(f"[green]✓[/] {markup_text(result)}", highlight=False)
