"""The configuration reference, generated from the settings models so it never drifts."""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from onboarding.redact import mask_value
from onboarding.settings import HubSettings, Settings, load_hub_settings, load_settings

__all__ = ["config_rows", "config_table_markdown"]


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined or field.default is None:
        return "—"
    if field.default == "":
        return '""'
    return f"`{field.default}`"


def config_rows() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting."""
    rows = []
    for model in (HubSettings, Settings):
        prefix = str(model.model_config.get("env_prefix", ""))
        for name, field in model.model_fields.items():
            default = _default(field)
            if name == "database_url":
                default = "`sqlite:///./onboarding.db`"
            rows.append((f"{prefix}{name}".upper(), default, field.description or ""))
    return rows


def config_table_markdown() -> str:
    """The README's configuration table."""
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    lines += [f"| `{name}` | {default} | {text} |" for name, default, text in config_rows()]
    return "\n".join(lines) + "\n"


def effective_settings() -> list[tuple[str, Any]]:
    """Each variable and its current value, masked (:func:`onboarding.redact.mask_value`).

    Raises :class:`~onboarding.settings.ConfigError` (never a pydantic traceback) on bad input.
    """
    hub, settings = load_hub_settings(), load_settings()
    values: list[tuple[str, Any]] = []
    for prefix, model in (("D360_", hub), ("ONBOARDING_", settings)):
        for name in type(model).model_fields:
            values.append((f"{prefix}{name}".upper(), mask_value(name, getattr(model, name))))
    return values


START, END = "<!-- config:start -->", "<!-- config:end -->"


def with_config_table(readme: str) -> str:
    """``readme`` with the text between the config markers replaced by the current table."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{config_table_markdown()}{END}{tail}"


if __name__ == "__main__":  # python -m onboarding.settings_doc [README.md]
    import sys
    from pathlib import Path

    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(with_config_table(path.read_text()))
