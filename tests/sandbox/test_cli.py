"""The `onboarding sandbox` command."""

from __future__ import annotations

from typer.testing import CliRunner

from onboarding.cli import app


def test_sandbox_help_lists_options() -> None:
    """`onboarding sandbox --help` succeeds and documents host, port, scenario and admin key."""
    result = CliRunner().invoke(app, ["sandbox", "--help"])

    assert result.exit_code == 0
    for option in ("--host", "--port", "--scenario", "--admin-key"):
        assert option in result.output


def test_unknown_scenario_is_a_config_error() -> None:
    """An unknown scenario exits with the configuration exit code before serving."""
    result = CliRunner().invoke(app, ["sandbox", "--scenario", "nonsense"])

    assert result.exit_code == 3
