"""The README stays true: its configuration table is the settings model's."""

from __future__ import annotations

from pathlib import Path

from onboarding.settings_doc import with_config_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_config_table_matches_settings():
    """README's configuration table is regenerated from the settings (python -m
    onboarding.settings_doc); this fails when a setting changed and the README did not."""
    text = README.read_text()
    assert "<!-- config:start -->" in text
    assert with_config_table(text) == text


def test_readme_quickstart_is_two_commands():
    """The quickstart is exactly two commands: run the demo, run the tests."""
    text = README.read_text()
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./run demo", "./run test"]


def test_prefect_yaml_agrees_with_the_settings_defaults():
    """prefect.yaml's sweep interval is the settings' default, and it sets no deployment
    concurrency of its own (each executor runs at most ONBOARDING_MAX_RUNNING)."""
    import yaml

    from onboarding.settings import Settings

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    by_name = {deployment["name"]: deployment for deployment in config["deployments"]}
    defaults = Settings.model_fields
    assert "concurrency_limit" not in by_name["onboard-channel"]
    [schedule] = by_name["watch-channels"]["schedules"]
    assert schedule["interval"] == defaults["sweep_interval"].default
