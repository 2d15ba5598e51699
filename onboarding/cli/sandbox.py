"""`onboarding sandbox`: serve the local Partner API simulator."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command to ``app``."""

    @app.command()
    def sandbox(port: int = typer.Option(8360, help="Port on 127.0.0.1.")) -> None:
        """Serve the Partner API sandbox."""
        raise typer.Exit(0)
