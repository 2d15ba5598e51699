"""`onboarding report`: the onboarding funnel, time to ready, slowest waiting, alerts."""

from __future__ import annotations

from pathlib import Path

import typer

from onboarding.cli.history import DEMO_OPTION

__all__ = ["register"]

JSON_HELP = (
    "Print the summary as JSON: since/until/generated_at (ISO-8601 UTC); funnel {signed_up, "
    "setting_up, ready, completed, failed, in_progress, failures [{state, reason, count}]}; "
    "time_to_ready [{day, count, p50, p90, p99}] per UTC day and time_to_ready_overall "
    "(seconds, null without data); waiting [{channel_id, client_id, client_name, state, "
    "availability_status, started_at, waited_seconds, deadline_at, overdue}] slowest first, "
    "waiting_total; alerts {raised, resolved, open_now, by_kind [{kind, raised, resolved, open}]}."
)


def register(app: typer.Typer) -> None:
    """Add the `report` command to ``app``."""

    @app.command()
    def report(
        since: str = typer.Option("7d", "--since", help="The window: e.g. 7d, 24h, 30m."),
        as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
        html: Path | None = typer.Option(
            None, "--html", help="Also write a self-contained HTML page with charts to FILE."
        ),
        top: int = typer.Option(10, "--top", min=1, help="How many slowest waiting channels."),
        demo: bool = DEMO_OPTION,
    ) -> None:
        """Onboarding funnel, time to ready (p50/p90/p99 per day), slowest waiting, alerts."""
        import sys

        from onboarding.cli._common import EXIT_CONFIG, console, fail
        from onboarding.cli.history import _session
        from onboarding.report import build_report, parse_since

        try:
            window = parse_since(since)
        except ValueError as exc:
            fail(f"--since: {exc}", EXIT_CONFIG)
        with _session(demo=demo, command="report") as session:
            summary = build_report(session, window=window, top=top)
        if html is not None:
            from onboarding.report import render_html

            html.write_text(render_html(summary), encoding="utf-8")
        if as_json:
            sys.stdout.write(summary.model_dump_json(indent=2) + "\n")
            return
        from onboarding.report import print_report

        print_report(summary, console)
        if html is not None:
            console.print(f"HTML report written to {html}", highlight=False, soft_wrap=True)
