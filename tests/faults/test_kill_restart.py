"""A worker dies (kill -9, with the flow runs in it) in the middle of 100 onboardings.

The killed runs stay ``Running`` in Prefect; the watcher makes them due again once their history
has not moved for the owner lease, and another worker carries them on from the steps recorded.
20 onboardings parked all along stay parked.

It runs against its own Prefect server (PostgreSQL + Redis, deployments/scale/cluster.py), not the
session's harness, because the session's worker serves the same pool there and would pick up
these runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from sqlalchemy import Engine
from sqlmodel import select

from deployments.scale.cluster import Cluster, ClusterSpec
from onboarding.launcher.deploy import apply_deployments, worker_command
from onboarding.orchestration.flow_runs import is_parked
from onboarding.runtime import engine_for
from onboarding.store import OnboardingRun, session_scope, upgrade
from tests.cli_process import run_cli
from tests.e2e.helpers import sweep_now, wait_for
from tests.fixtures.database import fresh_database
from tests.scale.support import own_redis_db
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

COUNT = 100
PARKED = 20  # onboardings whose channel stays setting_up throughout
SWEEP_SPACING = 8.0  # seconds between the recovery's sweeps
KEY_DELAY = 3.0  # seconds the sandbox takes to answer each key creation
LEASE = 30  # ONBOARDING_OWNER_LEASE: well above the longest step (under a second here)
REDIS_DB = int(os.environ.get("ONBOARDING_TEST_REDIS_DB", "11")) + 1
DEPLOYMENTS = ["onboard-channel/onboard-channel", "watch-channels/watch-channels"]


@pytest.fixture(scope="module")
def own_prefect(
    postgres_admin_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, str]]:
    """A Prefect server of this module's own (one API process, services), and a history DB."""
    with ExitStack() as stack:
        redis_db = stack.enter_context(own_redis_db(REDIS_DB))
        prefect_url = stack.enter_context(
            fresh_database(postgres_admin_engine, "prefect_faults", driver="postgresql+asyncpg")
        )
        history_url = stack.enter_context(fresh_database(postgres_admin_engine, "onboarding_kill"))
        upgrade(history_url)
        spec = ClusterSpec(
            prefect_db_url=prefect_url,
            redis_db=redis_db,
            api_ports=[free_port()],
            workers=0,
            register=False,
            log_dir=tmp_path_factory.mktemp("kill-logs"),
        )
        cluster = stack.enter_context(Cluster(spec))
        stack.callback(lambda: engine_for(history_url).dispose())
        yield cluster, history_url


def _runs(history_url: str) -> list[OnboardingRun]:
    with session_scope(engine_for(history_url)) as session:
        return list(session.exec(select(OnboardingRun)))


def _completed(history_url: str) -> int:
    return sum(run.state == "completed" for run in _runs(history_url))


def _flow_runs() -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["onboard-channel"])), limit=200
        )


def _executing() -> list[Any]:
    return [r for r in _flow_runs() if r.state.type.value in ("RUNNING", "PENDING")]


def _serve(cluster: Cluster, name: str, env: dict[str, str]) -> Any:
    """Start an `onboarding` worker on the cluster's pool (prefect.yaml deployed before)."""
    process = subprocess.Popen(
        [sys.executable, *worker_command(limit=20)],
        env={**os.environ, **env, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        stdout=cluster.log_path(name).open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cluster.processes[name] = process
    return process


def _sweep() -> None:
    sweep_now(timeout=240)


def _settle_a_while(done: Any, seconds: float = SWEEP_SPACING) -> None:
    """Between two sweeps, let the executor work: return once ``done()`` or after ``seconds``.

    Sweeps back to back only compete with the executor for the two CPUs; what they wait for
    (the zombie automation, the owner lease) comes with time, not with more sweeps.
    """
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.5)


def _sweep_from_cli(env: dict[str, str]) -> None:
    """`onboarding sweep`, as an operator would run it: it does not queue behind the backlog
    of woken runs that the restarted serving process works through first."""
    result = run_cli("sweep", "--json", env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_killed_worker_loses_no_onboarding(
    own_prefect, sandbox, sink_server, callback_receiver, monkeypatch
):
    """kill -9 mid-way through 100 runs, restart: all complete, each notified exactly once."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    cluster, history_url = own_prefect
    api_url = cluster.spec.api_urls[0]
    env = {
        **cluster.base_env,
        "PREFECT_API_URL": api_url,
        "PREFECT_LOGGING_LEVEL": "INFO",
        "D360_HUB_URL": sandbox.api_url,
        "D360_PARTNER_ID": sandbox.partner_id,
        "D360_API_KEY": sandbox.api_key,
        "ONBOARDING_DATABASE_URL": history_url,
        "ONBOARDING_RETRY_DELAY": "0.1",
        "ONBOARDING_SWEEP_INTERVAL": "3600",
        "ONBOARDING_OWNER_LEASE": str(LEASE),
        "ONBOARDING_ALERT_URLS": sink_server.url,
        "ONBOARDING_CALLBACK_URL": callback_receiver.url,
        "ONBOARDING_CALLBACK_SECRET": "kill-callback-secret",
    }
    for name in ("ONBOARDING_DATABASE_URL", "ONBOARDING_OWNER_LEASE", "PREFECT_API_URL"):
        monkeypatch.setenv(name, env[name])
    with temporary_settings(
        updates={PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: cluster.spec.auth_string}
    ):
        try:
            asyncio.run(
                apply_deployments(
                    env={**os.environ, **env},
                    sweep_interval=3600,
                    log_path=cluster.log_path("deploy"),
                )
            )
            channels = sandbox.bulk_channels(COUNT)
            parked = sandbox.bulk_channels(PARKED)
            first = _serve(cluster, "serve-1", env)
            _sweep()
            assert {run.state for run in _runs(history_url)} == {"waiting"}
            # Each key takes KEY_DELAY s to create, so the woken runs are still executing in
            # waves of the worker's limit when the sweep that woke them has finished.
            sandbox.add_fault(
                "slow", count=COUNT, delay=KEY_DELAY, path_contains="/api_keys", method="POST"
            )
            for channel_id in channels:
                sandbox.set_status(channel_id, "ready", status="ready", send_webhook=False)
            _sweep()

            wait_for(
                lambda: _completed(history_url) >= 1 and len(_executing()) >= 3,
                timeout=300,
                what="a first completion with runs still executing",
            )
            os.killpg(first.pid, signal.SIGKILL)  # the process and the flow runs it started
            first.wait(timeout=30)
            killed_at = time.monotonic()
            completed_before = _completed(history_url)
            stuck = _executing()
            assert completed_before < COUNT, "every run finished before the kill: nothing tested"
            assert stuck, "no run was executing at the kill: the takeover was not exercised"

            _serve(cluster, "serve-2", env)
            deadline = time.monotonic() + 600
            while _completed(history_url) < COUNT:
                assert time.monotonic() < deadline, f"{_completed(history_url)}/{COUNT} completed"
                _sweep_from_cli(env)
                _settle_a_while(lambda: _completed(history_url) >= COUNT)
            recovery = time.monotonic() - killed_at
            # A run killed after closing its history run but before reporting Completed is
            # left Running in Prefect; a sweep after the owner lease closes it.
            while unfinished := [
                run
                for run in _flow_runs()
                if run.parameters["channel_id"] in channels and not run.state.is_final()
            ]:
                assert time.monotonic() < deadline, f"{len(unfinished)} flow runs never closed"
                _sweep_from_cli(env)
                _settle_a_while(lambda: False)
        except BaseException:
            print(cluster.tails(lines=60))
            raise

        flow_runs = _flow_runs()
    states = {run.channel_id: run.state for run in _runs(history_url)}
    assert [states[cid] for cid in channels] == ["completed"] * COUNT
    assert [states[cid] for cid in parked] == ["waiting"] * PARKED
    assert Counter(run.parameters["channel_id"] for run in flow_runs) == Counter(channels + parked)
    not_completed = [
        (run.parameters["channel_id"], run.state.name, run.state.message)
        for run in flow_runs
        if run.parameters["channel_id"] in channels and not run.state.is_completed()
    ]
    assert not not_completed
    # Parked all along, never taken by a worker.
    assert all(is_parked(run) for run in flow_runs if run.parameters["channel_id"] in parked)
    # No follow-up step that finished ran again. One killed after creating its key but before
    # recording the delivery runs again (attempt 2, a new key that revokes the first): allowed
    # only for the runs executing at the kill, and the partner's last key is the working one.
    callbacks: dict[str, list[dict[str, Any]]] = {}
    for body, _ in callback_receiver.calls:
        payload = json.loads(body)
        callbacks.setdefault(payload["channel_id"], []).append(payload)
    assert sorted(callbacks) == sorted(channels), "a channel was never notified"
    keys = {cid: sandbox.api_key_count(cid) for cid in channels}
    repeated = {cid for cid in channels if keys[cid] > 1 or len(callbacks[cid]) > 1}
    assert len(repeated) <= len(stuck), f"follow-ups repeated for {sorted(repeated)}"
    for cid in channels:
        last = callbacks[cid][-1]
        assert last["api_key_id"] == sandbox.active_api_key_id(cid)
        # attempt counts begun follow-ups: one killed before its key request got through
        # counts but created no key
        assert keys[cid] <= last["attempt"], (cid, last["attempt"], keys[cid])
        assert len(callbacks[cid]) <= last["attempt"]
    print(
        f"\nkilled with {completed_before}/{COUNT} completed and {len(stuck)} running; "
        f"all done {recovery:.0f}s after the kill; follow-ups repeated: {len(repeated)}"
    )
