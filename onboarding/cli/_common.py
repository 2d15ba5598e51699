"""What every command shares: the console, exit codes, and errors turned into one line."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console

from onboarding.escaping import OneLineFilter, markup_text

__all__ = [
    "EXIT_CONFIG",
    "EXIT_DEADLINE",
    "EXIT_FAILED",
    "EXIT_HUB_UNAVAILABLE",
    "console",
    "err_console",
    "fail",
    "friendly_errors",
    "print_json",
]

EXIT_FAILED = 1
EXIT_DEADLINE = 2
EXIT_CONFIG = 3
EXIT_HUB_UNAVAILABLE = 4

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int) -> NoReturn:
    """Print one readable error line per problem to stderr and exit with ``code``."""
    for line in message.splitlines() or [""]:
        # Messages quote server text: shown as text, never read as rich markup.
        err_console.print(
            f"[bold red]error:[/] {markup_text(line)}", highlight=False, soft_wrap=True
        )
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout, undecorated, for scripts."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Map configuration, history database and Partner API errors to one line and exit code."""
    from onboarding.hub.errors import AuthError, HubError, HubUnavailable, RateLimited
    from onboarding.settings import ConfigError
    from onboarding.store import StoreError

    try:
        yield
    except ConfigError as exc:
        fail("\n".join(f"configuration: {line}" for line in str(exc).splitlines()), EXIT_CONFIG)
    except StoreError as exc:  # the history database: unreachable, bad URL (names it, masked)
        fail(str(exc), EXIT_CONFIG)
    except AuthError as exc:
        fail(f"Partner API refused the credentials: {exc}", EXIT_CONFIG)
    except (HubUnavailable, RateLimited) as exc:
        fail(f"Partner API unavailable: {exc}", EXIT_HUB_UNAVAILABLE)
    except HubError as exc:
        fail(f"Partner API: {exc}", EXIT_HUB_UNAVAILABLE)


class _NoTracebacks:
    """A logging filter that keeps each record's message but drops its traceback."""

    def filter(self, record: Any) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def quiet_prefect_console() -> None:
    """Keep Prefect's console log to one line per event: tracebacks still reach the Prefect API.

    Control characters in a message (outside text quoted in a log line) are shown escaped.

    A person at a terminal wants to know what happened; the full story is in the Prefect UI.
    """
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler
    from prefect.logging.loggers import get_logger

    get_logger()  # make sure Prefect's logging configuration is loaded
    for logger in [logging.getLogger(name) for name in logging.root.manager.loggerDict]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.addFilter(_NoTracebacks())
                handler.addFilter(OneLineFilter())
