"""The `onboarding sandbox` command."""

from __future__ import annotations

from typer.testing import CliRunner

from onboarding.cli import app


def test_sandbox_help_lists_options() -> None:
    """`onboarding sandbox --help` documents host, port, scenario, admin key and key shape."""
    result = CliRunner().invoke(app, ["sandbox", "--help"])

    assert result.exit_code == 0
    for option in ("--host", "--port", "--scenario", "--admin-key", "--key-shape"):
        assert option in result.output


def test_unknown_scenario_is_a_config_error() -> None:
    """An unknown scenario exits with the configuration exit code before serving."""
    result = CliRunner().invoke(app, ["sandbox", "--scenario", "nonsense"])

    assert result.exit_code == 3


def test_unknown_key_shape_is_a_config_error() -> None:
    """An unknown --key-shape exits with the configuration exit code and names the choices."""
    result = CliRunner().invoke(app, ["sandbox", "--key-shape", "nested"])

    assert result.exit_code == 3
    assert "wrapped" in result.output
