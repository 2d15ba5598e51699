"""Alembic, driven from Python: upgrade, downgrade and read the revision of a history database.

The migration scripts ship inside the package (``onboarding/store/migrations``). To write a new
revision after changing :mod:`onboarding.store.models`, upgrade a scratch database to head and
run ``alembic -x url=<url> revision --autogenerate -m "..."`` with ``script_location`` pointing
at that directory, or call :func:`alembic_config` and ``alembic.command.revision`` yourself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from onboarding.store.engine import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the functions: every onboarding flow run is a new process that
# imports the store but never migrates, and Alembic costs it ~0.15 CPU-s to import.

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    """An Alembic config for the packaged migrations (no ini file, no logging set-up)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision the package ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _run(url: str, action: str, revision: str) -> tuple[str | None, str | None]:
    from alembic import command

    engine = make_engine(url)
    try:
        before = _current(engine)
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)
        return before, _current(engine)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database at ``url`` up to ``revision``; return (revision before, after)."""
    return _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> tuple[str | None, str | None]:
    """Migrate the database at ``url`` down to ``revision`` (``base`` empties it)."""
    return _run(url, "downgrade", revision)


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (``None`` for an unmigrated database)."""
    engine = make_engine(url)
    try:
        return _current(engine)
    finally:
        engine.dispose()
