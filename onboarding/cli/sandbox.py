"""`onboarding sandbox`: serve the local Partner API simulator."""

from __future__ import annotations

import typer

from onboarding.cli._common import EXIT_CONFIG, console, fail


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command to ``app``."""

    @app.command()
    def sandbox(
        host: str = typer.Option("127.0.0.1", help="Address to bind."),
        port: int = typer.Option(8360, help="Port to listen on."),
        scenario: str = typer.Option(
            "none", help="Seed data: 'demo' (channels settling, new signups) or 'none'."
        ),
        admin_key: str = typer.Option(
            "sandbox-admin",
            envvar="SANDBOX_ADMIN_KEY",
            help="Key for the control API (header X-Sandbox-Admin-Key).",
        ),
        webhook_url: str | None = typer.Option(
            None, help="Preset the sandbox partner's webhook URL (where partner events go)."
        ),
        key_shape: str = typer.Option(
            "flat",
            "--key-shape",
            envvar="SANDBOX_KEY_SHAPE",
            help="How key creation answers: 'flat' {id, api_key, ...}, 'wrapped' "
            "{api_keys: [...]}, or 'key' (the value named key).",
        ),
        without_status: int = typer.Option(
            0,
            "--without-status",
            min=0,
            help="Also seed this many channels whose objects lack availability_status.",
        ),
    ) -> None:
        """Serve the Partner API sandbox (a local simulator of 360dialog's Partner API)."""
        import uvicorn

        from onboarding.sandbox import SANDBOX_API_KEY, SANDBOX_PARTNER_ID, create_app

        try:
            asgi = create_app(
                scenario=None if scenario == "none" else scenario,
                admin_key=admin_key,
                webhook_url=webhook_url,
                key_shape=key_shape,
                without_status=without_status,
            )
        except ValueError as exc:
            fail(str(exc), EXIT_CONFIG)
        wildcard = host in ("0.0.0.0", "::")  # noqa: S104 - a comparison, not a bind
        shown_host = "127.0.0.1" if wildcard else host
        base = f"http://{shown_host}:{port}"
        console.print(f"[bold]Partner API sandbox[/] (scenario: {scenario}, keys: {key_shape})")
        console.print(f"  D360_HUB_URL={base}/api/v2", highlight=False)
        console.print(f"  D360_PARTNER_ID={SANDBOX_PARTNER_ID}", highlight=False)
        console.print(f"  D360_API_KEY={SANDBOX_API_KEY}", highlight=False)
        console.print(f"  control API: {base}/sandbox/", highlight=False)
        console.print(f"  X-Sandbox-Admin-Key: {admin_key}", highlight=False)
        if webhook_url:
            console.print(f"  partner webhooks -> {webhook_url}", highlight=False)
        uvicorn.run(asgi, host=host, port=port, log_level="warning")
