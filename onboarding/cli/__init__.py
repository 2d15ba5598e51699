"""The ``onboarding`` command line (typer + rich).

Each command group lives in its own module with a ``register(app)`` function; heavy imports
(Prefect, SQLAlchemy, httpx) happen inside the commands so ``onboarding --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

import typer
from pydantic import ValidationError

__all__ = ["app", "main"]

app = typer.Typer(
    name="onboarding",
    help="Onboard 360dialog WhatsApp channels with Prefect: from signup to ready, with alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Onboard 360dialog WhatsApp channels with Prefect: from signup to ready, with alerts."""


# One module per command group; each adds its commands to `app`.
COMMAND_MODULES = [
    "sandbox",
    "channels",
    "db",
    "onboard",
    "history",
    "sweep_once",
    "config",
    "up",
    "report",
    "doctor",
    "receiver",
    "rekey",
    "webhook",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"onboarding.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point: private files, local Prefect credentials, clean errors.

    The umask makes every file a command creates (databases, logs, state) 0600 and every
    directory 0700, and the processes ``up`` starts inherit it.
    """
    os.umask(0o077)
    if os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_API_AUTH_STRING"):
        from onboarding.launcher.auth import export_for_local_api

        # Before any command imports Prefect: it reads its settings once, at import.
        export_for_local_api(os.environ)
    try:
        app()
    except ValidationError as exc:  # a model built outside load_settings(): still one line each
        from onboarding.cli._common import EXIT_CONFIG, fail
        from onboarding.settings import explain

        prefix = {"HubSettings": "D360_", "Settings": "ONBOARDING_"}.get(exc.title, "")
        lines = explain(exc, prefix).splitlines()
        with contextlib.suppress(typer.Exit):
            fail("\n".join(f"configuration: {line}" for line in lines), EXIT_CONFIG)
        sys.exit(EXIT_CONFIG)
