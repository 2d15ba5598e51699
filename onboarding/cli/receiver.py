"""`onboarding receiver`: the partner-webhook receiver on its own, apart from the rest."""

from __future__ import annotations

import typer

__all__ = ["log_to_stderr", "register"]


def register(app: typer.Typer) -> None:
    """Add the `receiver` command to ``app``."""

    @app.command()
    def receiver(
        host: str | None = typer.Option(
            None, help="Address to bind (default ONBOARDING_RECEIVER_HOST)."
        ),
        port: int | None = typer.Option(
            None, help="Port to listen on (default ONBOARDING_RECEIVER_PORT)."
        ),
    ) -> None:
        """Serve the partner-webhook receiver: inbox first, answer 202, then reconcile.

        It needs the history database, the Partner API settings and a Prefect API
        (PREFECT_API_URL) where the deployments run; events it cannot hand on stay in the inbox
        for the watcher's replay.
        """
        import uvicorn

        from onboarding.cli._common import console, friendly_errors
        from onboarding.launcher.receiver import HOOK_PREFIX
        from onboarding.orchestration.webhooks import reconcile_event
        from onboarding.receiver import create_app_from_settings, serve_config
        from onboarding.settings import (
            load_hub_settings,
            load_settings,
            require_strong_webhook_token,
        )
        from onboarding.store import upgrade

        with friendly_errors():
            settings = load_settings()
            require_strong_webhook_token(settings.webhook_token)
            load_hub_settings().require_credentials()
            upgrade(settings.database_url)
            asgi = create_app_from_settings(settings, handoff=reconcile_event)
        bind_host = host or settings.receiver_host
        bind_port = port or settings.receiver_port
        console.print(
            f"Partner-webhook receiver on http://{bind_host}:{bind_port}{HOOK_PREFIX}<token> "
            "(ONBOARDING_WEBHOOK_TOKEN); health at /healthz",
            highlight=False,
        )
        log_to_stderr()
        uvicorn.Server(serve_config(asgi, bind_host, bind_port, log_level="warning")).run()


def log_to_stderr() -> None:
    """The receiver's warnings on stderr, one line per record (outside text escaped)."""
    import logging

    from onboarding.escaping import OneLineFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("onboarding.receiver")
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    logger.propagate = False
