"""`onboarding db`: migrate the history database (upgrade, downgrade, current revision)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from onboarding.cli._common import EXIT_CONFIG, EXIT_FAILED, console, fail

__all__ = ["register"]


@contextlib.contextmanager
def _db_errors() -> Iterator[None]:
    """Map settings and database errors to one line: exit 3 for a bad URL or unreachable DB."""
    from alembic.util import CommandError

    from onboarding.settings import ConfigError
    from onboarding.store import DatabaseUnavailable, InvalidDatabaseURL

    try:
        yield
    except ConfigError as exc:
        fail(f"configuration: {exc}", EXIT_CONFIG)
    except (DatabaseUnavailable, InvalidDatabaseURL) as exc:
        fail(str(exc), EXIT_CONFIG)
    except CommandError as exc:
        fail(f"migration: {exc}", EXIT_FAILED)


def _url() -> str:
    from onboarding.settings import load_settings

    return load_settings().database_url


def _existing(url: str) -> str:
    """``url``, after making sure a SQLite file it names exists (reading must not create it)."""
    from onboarding.store import masked_url
    from onboarding.store.readiness import UPGRADE_HINT, sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.is_file():
        fail(f"history database {masked_url(url)} does not exist: {UPGRADE_HINT}", EXIT_CONFIG)
    return url


def _label(revision: str | None) -> str:
    return revision or "<empty>"


def _print_move(url: str, before: str | None, after: str | None) -> None:
    """Print where a migration took the database: ``<url>: <before> -> <after>``."""
    from onboarding.store import masked_url

    console.print(
        f"{masked_url(url)}: {_label(before)} -> {_label(after)}", highlight=False, soft_wrap=True
    )


def register(app: typer.Typer) -> None:
    """Add the `db` command group to ``app``."""
    db = typer.Typer(help="Migrate the history database (ONBOARDING_DATABASE_URL).")
    app.add_typer(db, name="db")

    @db.command()
    def upgrade(
        revision: str = typer.Argument("head", help="Target revision (default: the newest)."),
    ) -> None:
        """Migrate the history database up to REVISION."""
        from onboarding.store import masked_url
        from onboarding.store import upgrade as run_upgrade

        with _db_errors():
            url = _url()
            with console.status(f"Migrating {masked_url(url)} to {revision} …"):
                before, after = run_upgrade(url, revision)
        _print_move(url, before, after)

    @db.command()
    def downgrade(
        revision: str = typer.Argument(..., help="Target revision (`base` drops every table)."),
    ) -> None:
        """Migrate the history database down to REVISION."""
        from onboarding.store import downgrade as run_downgrade

        with _db_errors():
            url = _existing(_url())
            before, after = run_downgrade(url, revision)
        _print_move(url, before, after)

    @db.command()
    def current() -> None:
        """Print the history database's revision and the newest one available."""
        from onboarding.store import current_revision, head_revision, masked_url

        with _db_errors():
            url = _existing(_url())
            revision = current_revision(url)
        head = head_revision()
        note = "up to date" if revision == head else f"head is {head}: run `onboarding db upgrade`"
        console.print(
            f"{masked_url(url)}: {_label(revision)} ({note})", highlight=False, soft_wrap=True
        )
