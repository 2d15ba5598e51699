"""Outside text is shown as text: rich markup, ESC sequences and newlines in names, statuses,
reasons and ids reach `status`, `history`, `report`, `channels`, `up`'s event log and the
receiver log literally, one record per line, and never break a command (issue 20)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import typer
from rich.console import Console
from sqlalchemy import Engine
from typer.testing import CliRunner

from onboarding.cli import app
from onboarding.cli._common import console, fail
from onboarding.escaping import OneLineFormatter, plain, visible
from onboarding.launcher.eventlog import EventLog
from onboarding.store import record_observation, session_scope, settle_run, update_run
from tests.fixtures.database import start_test_run
from tests.fixtures.sandbox import SandboxServer

# Each piece once broke a command or a log: markup rich would read (or crash on), a link, an
# ANSI "clear screen" and a newline that would start a forged log record.
MARKUP = ("[/]", "[bold]", "[link=https://evil.example]x[/link]", "[clk](javascript:alert(1))")
HOSTILE = "Acme [/] Ltd [bold]B [link=https://evil.example]x[/link] [clk](javascript:alert(1))"
CONTROL = "\x1b[2J\nFORGED INFO onboarding.receiver: owned"
SHOWN_CONTROL = "\\x1b[2J\\nFORGED INFO onboarding.receiver: owned"
CHANNEL = "ch[/]\x1b[31m\nX"
STATUS = "[/]\x1b[2J\nFORGED [bold]"  # status columns hold 32 characters


def assert_literal(output: str, *values: str) -> None:
    """Every value appears as text, control characters escaped; no raw ESC, no forged line."""
    for value in values:
        assert visible(value) in output, (value, output)
    assert "\x1b" not in output
    assert not re.search(r"^FORGED", output, re.MULTILINE), output


@pytest.fixture
def wide_console() -> Iterator[None]:
    """The CLI's console wide enough that no table cell wraps inside a hostile value."""
    before = console.width
    console.width = 1000
    yield
    console.width = before


@pytest.fixture
def hostile_history(engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed run and a waiting run whose every outside field holds markup and controls."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        failed, _ = start_test_run(
            session,
            CHANNEL,
            client_id="cl[bold]",
            client_name=HOSTILE,
            now=now - timedelta(hours=2),
        )
        assert failed.id is not None
        record_observation(
            session,
            channel_id=CHANNEL,
            availability_status=STATUS,
            status=STATUS[::-1],
            source="poll",
            run_id=failed.id,
        )
        settle_run(
            session,
            run_id=failed.id,
            state="failed",
            availability_status="error",
            failure_reason=HOSTILE + CONTROL,
        )
        waiting, _ = start_test_run(session, "ch-waiting", client_name=HOSTILE)
        assert waiting.id is not None
        update_run(session, run_id=waiting.id, availability_status=STATUS)
    monkeypatch.setenv("ONBOARDING_DATABASE_URL", db_url)


@pytest.mark.usefixtures("hostile_history", "wide_console")
def test_status_shows_names_statuses_and_reasons_literally() -> None:
    """`status` exits 0 and prints the client name, status and reason as written, escaped."""
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert_literal(result.stdout, HOSTILE, CHANNEL, STATUS, HOSTILE + CONTROL)


@pytest.mark.usefixtures("hostile_history", "wide_console")
def test_history_shows_the_transitions_literally() -> None:
    """`history ID` for an id full of markup and controls shows runs and statuses as text."""
    result = CliRunner().invoke(app, ["history", CHANNEL])
    assert result.exit_code == 0, result.output
    assert_literal(result.stdout, CHANNEL, HOSTILE, STATUS, STATUS[::-1])


@pytest.mark.usefixtures("hostile_history")
def test_history_json_is_unchanged() -> None:
    """--json keeps the values exactly as stored: escaping is for terminals only."""
    import json

    result = CliRunner().invoke(app, ["history", CHANNEL, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["runs"][0]["client_name"] == HOSTILE
    assert data["runs"][0]["failure_reason"] == HOSTILE + CONTROL


@pytest.mark.usefixtures("hostile_history", "wide_console")
def test_report_shows_reasons_and_waiting_channels_literally() -> None:
    """`report` prints the failure reason and the waiting run's client and status as text."""
    result = CliRunner().invoke(app, ["report", "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert_literal(result.stdout, HOSTILE, STATUS)


@pytest.mark.usefixtures("wide_console")
def test_channels_shows_client_names_literally(sandbox: SandboxServer) -> None:
    """`channels` prints a client name the client chose at signup exactly as written."""
    sandbox.create_channel(client_name=HOSTILE + CONTROL, send_webhook=False)
    result = CliRunner().invoke(app, ["channels"], env=sandbox.credentials())
    assert result.exit_code == 0, result.output
    assert_literal(result.stdout, HOSTILE + CONTROL)


def test_event_log_lines_show_outside_text_literally(engine: Engine) -> None:
    """`up`'s live log prints a hostile status and reason on one line each, as text."""
    log = EventLog(engine, lambda channel, client: f"onboard-{client}-{channel}")
    with session_scope(engine) as session:
        run, _ = start_test_run(session, CHANNEL, client_id="[bold]cl")
        assert run.id is not None
        record_observation(
            session,
            channel_id=CHANNEL,
            availability_status=STATUS,
            status=None,
            source="poll",
            run_id=run.id,
        )
        settle_run(
            session,
            run_id=run.id,
            state="failed",
            availability_status=None,
            failure_reason=HOSTILE + CONTROL,
        )
    out = io.StringIO()
    terminal = Console(file=out, width=1000, force_terminal=True, color_system=None)
    lines = log.poll()
    for line in lines:
        terminal.print(line.render(), highlight=False, soft_wrap=True)
    printed = out.getvalue()
    assert_literal(printed, CHANNEL, STATUS, HOSTILE + CONTROL, "[bold]cl")
    assert len(printed.splitlines()) == len(lines) == 2  # the failed run, the status seen


def test_one_line_formatter_escapes_message_and_traceback() -> None:
    """A record and its traceback come out as one line, ESC and newlines escaped."""
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("bad\nFORGED")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "id %s", (CONTROL,), None)
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line
    assert "\x1b" not in line
    assert line.startswith("ERROR id " + SHOWN_CONTROL)
    assert "ValueError: bad\\nFORGED" in line


def test_plain_is_never_read_as_markup() -> None:
    """Every markup piece survives a rich render through :func:`plain` untouched."""
    out = io.StringIO()
    Console(file=out, width=1000, color_system=None).print(plain(HOSTILE))
    assert out.getvalue().rstrip("\n") == HOSTILE
    for piece in MARKUP:
        assert piece in out.getvalue()


def test_error_lines_quote_server_text_literally(capsys: pytest.CaptureFixture[str]) -> None:
    """An error quoting server text prints it as text; every line it makes is an `error:` line."""
    with pytest.raises(typer.Exit) as exited:
        fail("Partner API: " + HOSTILE + CONTROL, 4)
    assert exited.value.exit_code == 4
    err = capsys.readouterr().err
    assert_literal(err, HOSTILE + "\x1b[2J")
    assert "\x1b" not in err
    assert all(line.startswith("error: ") for line in err.splitlines()), err
