"""Helpers for end-to-end tests: wait for conditions, look at Prefect runs and the history."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.deployments import run_deployment

from onboarding.store import find_runs, make_engine, session_scope
from tests import polling

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], *, timeout: float = 90, what: str = "condition") -> T:
    """Poll ``predicate`` every 0.2 s until it returns something truthy; fail after ``timeout``."""
    return polling.wait_for(predicate, timeout=timeout, what=what, interval=0.2)


def history_runs(db_url: str, channel_id: str) -> list[Any]:
    """The channel's onboarding runs in the history, newest first."""
    with session_scope(make_engine(db_url)) as session:
        return find_runs(session, channel_id=channel_id)


def flow_runs_named(name: str) -> list[Any]:
    """Prefect flow runs with exactly this name."""
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )


def sweep_now(*, timeout: float = 120) -> Any:
    """Run the watcher deployment once and wait for it to finish.

    The deployment runs one sweep at a time and cancels a new one while another is going (an
    executor starts one as soon as it serves): a sweep cancelled that way is asked for again.
    """
    deadline = time.monotonic() + timeout
    while True:
        flow_run = run_deployment("watch-channels/watch-channels", timeout=timeout)
        assert flow_run.state is not None
        if not flow_run.state.is_cancelled() or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # let the sweep in flight finish
    assert flow_run.state.is_completed(), flow_run.state
    return flow_run
