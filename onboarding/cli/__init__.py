"""The ``onboarding`` command line (typer + rich).

Each command group lives in its own module with a ``register(app)`` function; heavy imports
(Prefect, SQLAlchemy, httpx) happen inside the commands so ``onboarding --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

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
    "sweep",
    "config",
    "up",
    "report",
    "doctor",
    "receiver",
    "rekey",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"onboarding.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
