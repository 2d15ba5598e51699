"""`onboarding config`: every setting, its value now (secrets masked), or the reference table."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `config` command to ``app``."""

    @app.command()
    def config(
        markdown: bool = typer.Option(
            False, "--markdown", help="Print the configuration reference as a markdown table."
        ),
    ) -> None:
        """Show the settings in effect (secrets masked), read from the environment and .env."""
        import sys

        from onboarding.settings_doc import config_table_markdown, effective_settings

        if markdown:
            sys.stdout.write(config_table_markdown())
            return
        from rich.table import Table

        from onboarding.cli._common import console, friendly_errors

        with friendly_errors():
            values = effective_settings()
        table = Table(title="Settings in effect")
        table.add_column("variable")
        table.add_column("value", overflow="fold")
        for name, value in values:
            table.add_row(name, "—" if value is None else str(value))
        console.print(table)
