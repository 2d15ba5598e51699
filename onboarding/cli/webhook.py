"""`onboarding webhook show|register`: read and set the partner webhook URL (Partner API)."""

from __future__ import annotations

import asyncio

import typer

__all__ = ["register"]

webhook_app = typer.Typer(
    help="The partner webhook URL 360dialog posts events to: show it, or point it here.",
    no_args_is_help=True,
)


async def _read() -> str | None:
    from onboarding.hub import HubClient
    from onboarding.settings import load_hub_settings

    async with HubClient.from_settings(load_hub_settings()) as hub:
        return await hub.get_webhook_url()


async def _write(url: str) -> str | None:
    """Set the URL, then read it back (what the Partner API holds now)."""
    from onboarding.hub import HubClient
    from onboarding.settings import load_hub_settings

    async with HubClient.from_settings(load_hub_settings()) as hub:
        await hub.set_webhook_url(url)
        return await hub.get_webhook_url()


@webhook_app.command("show")
def show(
    as_json: bool = typer.Option(
        False, "--json", help="Print {webhook_url (token masked), match, ours}."
    ),
) -> None:
    """The registered partner webhook URL and whether it is this receiver's (token masked)."""
    from onboarding.cli._common import console, friendly_errors, print_json
    from onboarding.partner_webhook import compare, shown
    from onboarding.settings import load_settings

    with friendly_errors():
        settings = load_settings()
        registered = asyncio.run(_read())
    verdict = compare(registered, token=settings.webhook_token, public_url=settings.public_url)
    if as_json:
        print_json(
            {
                "webhook_url": shown(registered, settings.webhook_token) if registered else None,
                "match": str(verdict.match),
                "ours": verdict.ours,
            }
        )
        return
    style = "green" if verdict.ours else "yellow"
    console.print(f"Partner webhook URL: {shown(registered, settings.webhook_token)}", markup=False)
    console.print(f"[{style}]{'✓' if verdict.ours else '!'}[/] ", end="")
    console.print(verdict.summary, markup=False, highlight=False)


@webhook_app.command("register")
def register_url(
    url: str | None = typer.Option(
        None,
        "--url",
        help="The URL to register (default: ONBOARDING_PUBLIC_URL + /hooks/360dialog/<token>).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Point the partner webhook at this receiver: it redirects EVERY partner webhook event."""
    from onboarding.cli._common import EXIT_CONFIG, EXIT_FAILED, console, fail, friendly_errors
    from onboarding.partner_webhook import compare, receiver_url, shown
    from onboarding.settings import load_hub_settings, load_settings

    with friendly_errors():
        settings = load_settings()
        hub = load_hub_settings()
        hub.require_credentials()
        target = url.strip() if url else receiver_url(settings)
        if not target.startswith(("https://", "http://")):
            fail("--url must be an http(s) URL", EXIT_CONFIG)
        current = asyncio.run(_read())
    token = settings.webhook_token
    console.print(
        f"Partner {hub.partner_id}: partner webhook URL {shown(current, token)} -> "
        f"{shown(target, token)}",
        markup=False,
        highlight=False,
    )
    if not yes and not typer.confirm(
        "Every partner webhook event will go to the new URL. Register it?", default=False
    ):
        console.print("Nothing changed.")
        raise typer.Exit(EXIT_FAILED)
    with friendly_errors():
        now = asyncio.run(_write(target))
    if now != target:
        fail(f"the Partner API now holds {shown(now, token)}, not the URL sent", EXIT_FAILED)
    verdict = compare(now, token=token, public_url=settings.public_url)
    console.print("[green]✓[/] registered. ", end="")
    console.print(verdict.summary, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add the `webhook` command group to ``app``."""
    app.add_typer(webhook_app, name="webhook")
