"""Where ``onboarding up --demo`` keeps its history, and how to read it back afterwards.

The demo never touches ``ONBOARDING_DATABASE_URL``: its history is a SQLite file under
``ONBOARDING_HOME`` (``<home>/demo/history.db``). The read commands take ``--demo`` to look there.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["READ_BACK", "demo_database_path", "demo_database_url"]

# What the demo's banner and closing summary tell a person to run next.
READ_BACK = "onboarding status --demo  (also: history CHANNEL_ID --demo, report --demo)"


def demo_database_path(home: Path) -> Path:
    """The demo's history file under ``home`` (``ONBOARDING_HOME``)."""
    return home.absolute() / "demo" / "history.db"


def demo_database_url(home: Path) -> str:
    """The SQLAlchemy URL of the demo's history under ``home``."""
    return f"sqlite:///{demo_database_path(home)}"
