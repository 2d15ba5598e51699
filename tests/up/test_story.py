"""`up`'s live log and closing table tell each onboarding's story from the history.

The rows are written as the flow writes them (a real SQLite history, the store's functions):
the run parks ``undelivered`` with a ``retry_at`` after the partner's callback answered 503 (the
``notify_partner`` step keeps the error), or ``permission`` while the client has not granted it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from onboarding.demo import READ_BACK
from onboarding.launcher.banner import StartInfo, start_panel, summary
from onboarding.launcher.eventlog import EventLog
from onboarding.store import (
    RunState,
    make_engine,
    record_step,
    session_scope,
    settle_run,
    update_run,
    upgrade,
    utcnow,
)
from tests.fixtures.database import start_test_run

CALLBACK_503 = (
    "completion callback to http://127.0.0.1:8360/sandbox/demo/callback answered HTTP 503"
)
NO_PERMISSION = "the client has not granted permission yet"


def _name(channel_id: str, client_id: str | None) -> str:
    return f"onboard-{client_id}-{channel_id}"


def _engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    upgrade(url)
    return make_engine(url)


def _park(engine: Engine, run_id: int, state: RunState, reason: str, seconds: float) -> None:
    """What the flow records when it parks to retry: state, reason, next attempt."""
    with session_scope(engine) as session:
        update_run(
            session,
            run_id=run_id,
            state=state,
            failure_reason=reason,
            waiting_since=utcnow(),
            retry_at=utcnow() + timedelta(seconds=seconds),
        )


def _delivery(engine: Engine, run_id: int, outcome: str, detail: dict[str, object]) -> None:
    with session_scope(engine) as session:
        record_step(session, run_id=run_id, step="notify_partner", outcome=outcome, detail=detail)


def _complete(engine: Engine, run_id: int) -> None:
    with session_scope(engine) as session:
        settle_run(session, run_id=run_id, state=RunState.COMPLETED, availability_status="ready")


def test_a_delivery_retry_reads_as_a_retry_and_completed_only_at_the_end(tmp_path: Path) -> None:
    """Ready, two refused deliveries (each its own line), then completed: said once, at the end."""
    engine = _engine(tmp_path)
    log = EventLog(engine, _name)
    with session_scope(engine) as session:
        run, _ = start_test_run(session, "ch1", client_id="acme")
        assert run.id is not None
        run_id = run.id
    with session_scope(engine) as session:
        settle_run(session, run_id=run_id, state=RunState.READY, availability_status="ready")
    assert [line.text for line in log.poll()] == ["channel ready: delivering its key"]

    _delivery(engine, run_id, "failed", {"attempt": 1, "error": CALLBACK_503})
    _park(engine, run_id, RunState.UNDELIVERED, "callback did not take the key", 60)
    first = [line.text for line in log.poll()]
    _park(engine, run_id, RunState.UNDELIVERED, "callback did not take the key", 120)
    second = [line.text for line in log.poll()]
    assert first == ["callback refused (503), retrying in 1 min"]
    assert second == ["callback refused (503), retrying in 2 min"]

    _delivery(engine, run_id, "done", {"attempt": 2, "callback_status": 200})
    _complete(engine, run_id)
    assert [line.text for line in log.poll()] == ["completed: the partner holds its key"]
    assert log.poll() == []
    engine.dispose()


def test_a_permission_wait_reads_as_one_and_the_table_shows_the_outcome(tmp_path: Path) -> None:
    """The log says the run waits for permission; once completed, the closing table's last
    column is how it ended, not the reason it last waited for."""
    engine = _engine(tmp_path)
    log = EventLog(engine, _name)
    with session_scope(engine) as session:
        run, _ = start_test_run(session, "ch2", client_id="initech")
        assert run.id is not None
        run_id = run.id
        failed, _ = start_test_run(session, "ch3", client_id="umbrella")
        assert failed.id is not None
        settle_run(
            session,
            run_id=failed.id,
            state=RunState.FAILED,
            availability_status="error",
            failure_reason="channel ch3 is in error: rejected by Meta",
        )
    log.poll()
    _park(engine, run_id, RunState.PERMISSION, NO_PERMISSION, 300)
    [line] = log.poll()
    assert line.text == "waiting for the client's permission to create its key, retrying in 5 min"

    console = Console(record=True, width=160)
    console.print(summary(engine, _name))
    waiting = console.export_text()
    assert "waiting for the client's permission" in waiting

    _delivery(engine, run_id, "done", {"attempt": 1, "callback_status": 200})
    _complete(engine, run_id)
    console = Console(record=True, width=160)
    console.print(summary(engine, _name, demo=True))
    table = console.export_text()
    row = next(text for text in table.splitlines() if "onboard-initech-ch2" in text)
    assert "completed" in row
    assert "the partner holds its key" in row
    assert NO_PERMISSION not in table
    failed_row = next(text for text in table.splitlines() if "onboard-umbrella-ch3" in text)
    assert "rejected by Meta" in failed_row
    assert READ_BACK in table
    engine.dispose()


def test_the_demo_banner_names_how_to_read_its_history_back(tmp_path: Path) -> None:
    """The demo's start panel says which command reads its history; a real run's does not."""
    info = StartInfo(
        prefect_ui="http://127.0.0.1:4200",
        prefect_origin="started",
        prefect_login=None,
        receiver_url="http://127.0.0.1:8080/hooks/360dialog/abcd***",
        receiver_url_file=tmp_path / "webhook-url",
        sandbox_url="http://127.0.0.1:8360",
        database_url=f"sqlite:///{tmp_path / 'demo' / 'history.db'}",
        log_dir=tmp_path / "logs",
        demo_minutes=2,
    )
    for sandbox_url, shown in (("http://127.0.0.1:8360", True), (None, False)):
        console = Console(record=True, width=200)
        panel = start_panel(StartInfo(**{**info.__dict__, "sandbox_url": sandbox_url}))
        console.print(panel)
        assert ("onboarding status --demo" in console.export_text()) is shown
