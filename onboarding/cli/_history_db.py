"""The history database a read command opens: configured or the demo's, checked before use.

``status``, ``history`` and ``report`` read ``ONBOARDING_DATABASE_URL``, or with ``--demo`` the
history ``onboarding up --demo`` keeps under ``ONBOARDING_HOME``. A database that is missing,
not migrated or unreachable is one line naming it (password masked) and exit code 3; nothing
is created.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlmodel import Session

    from onboarding.settings import Settings

__all__ = ["history_session", "history_url"]


def history_url(settings: Settings, *, demo: bool) -> str:
    """The database a read command opens: the demo's under the home, or the configured one."""
    from onboarding.demo import demo_database_url

    return demo_database_url(settings.home) if demo else settings.database_url


def _explain(error: Exception, settings: Settings, *, demo: bool, command: str) -> str:
    """The error's sentence, pointing at the demo's history where that is what was meant."""
    from onboarding.demo import demo_database_path
    from onboarding.store.readiness import DatabaseMissing

    message = str(error)
    if demo and isinstance(error, DatabaseMissing):
        url = history_url(settings, demo=True)
        return (
            f"the demo's history {url} does not exist: run `onboarding up --demo` "
            "(`./run demo`) first, with the same ONBOARDING_HOME"
        )
    if not demo and demo_database_path(settings.home).is_file():
        message += f" (the demo's history: `onboarding {command} --demo`)"
    return message


@contextlib.contextmanager
def history_session(*, demo: bool, command: str) -> Iterator[Session]:
    """A session on the history database that ``command`` reads; one line and exit 3 if not."""
    from onboarding.cli._common import EXIT_CONFIG, fail
    from onboarding.settings import ConfigError, load_settings
    from onboarding.store import StoreError, make_engine, session_scope
    from onboarding.store.readiness import DatabaseMissing, DatabaseNotMigrated, require_migrated

    try:
        settings = load_settings()
    except ConfigError as exc:
        fail("\n".join(f"configuration: {line}" for line in str(exc).splitlines()), EXIT_CONFIG)
    try:
        require_migrated(history_url(settings, demo=demo))
    except (DatabaseMissing, DatabaseNotMigrated) as exc:
        fail(_explain(exc, settings, demo=demo, command=command), EXIT_CONFIG)
    except StoreError as exc:
        fail(str(exc), EXIT_CONFIG)
    engine = make_engine(history_url(settings, demo=demo))
    try:
        with session_scope(engine) as session:
            yield session
    except StoreError as exc:
        fail(str(exc), EXIT_CONFIG)
    finally:
        engine.dispose()
