"""Fixtures: the scaled-out setup at small size on this machine (deployments/scale/cluster.py).

Fresh PostgreSQL databases (Prefect's and the history's, dropped after), a Redis database number
of its own (emptied after, and only that one), two API processes without services, one services
process, two executors, which register the deployments.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from deployments.scale.cluster import Cluster, ClusterSpec
from onboarding.runtime import engine_for
from onboarding.store import upgrade
from tests.fixtures.database import fresh_database
from tests.scale.support import own_redis_db
from tests.servers import free_port

# A Redis database number nobody else on this machine uses; checked empty before we start.
REDIS_DB = int(os.environ.get("ONBOARDING_TEST_REDIS_DB", "11"))


@dataclass
class Scaled:
    """The running cluster and what a test needs to talk to it."""

    cluster: Cluster
    api_url: str
    history_url: str
    product_env: dict[str, str]


@pytest.fixture(scope="module")
def redis_db() -> Iterator[int]:
    """A Redis database number that is empty now; only it is flushed afterwards."""
    with own_redis_db(REDIS_DB) as number:
        yield number


@pytest.fixture(scope="module")
def scaled(
    postgres_admin_engine: Engine,
    redis_db: int,
    sandbox_server: Any,
    sink_server: Any,
    _callback_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scaled]:
    """The cluster, started once for the module; every process's log tail printed on failure."""
    servers = (sandbox_server, sink_server, _callback_server)
    with ExitStack() as stack:
        prefect_url = stack.enter_context(
            fresh_database(postgres_admin_engine, "prefect_scale", driver="postgresql+asyncpg")
        )
        history_url = stack.enter_context(fresh_database(postgres_admin_engine, "onboarding_scale"))
        upgrade(history_url)
        yield from _run_cluster(prefect_url, history_url, redis_db, servers, tmp_path_factory)


def _run_cluster(
    prefect_url: str,
    history_url: str,
    redis_db: int,
    servers: tuple[Any, Any, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scaled]:
    sandbox_server, sink_server, _callback_server = servers
    product_env = {
        "D360_HUB_URL": sandbox_server.api_url,
        "D360_PARTNER_ID": sandbox_server.partner_id,
        "D360_API_KEY": sandbox_server.api_key,
        "ONBOARDING_DATABASE_URL": history_url,
        "ONBOARDING_RETRY_DELAY": "0.1",
        "ONBOARDING_REPLAY_AFTER": "0",
        "ONBOARDING_ALERT_URLS": sink_server.url,
        "ONBOARDING_CALLBACK_URL": _callback_server.url,
        "ONBOARDING_CALLBACK_SECRET": "scale-callback-secret",
        "ONBOARDING_EXECUTOR_POLL": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    spec = ClusterSpec(
        prefect_db_url=prefect_url,
        redis_db=redis_db,
        api_ports=[free_port(), free_port()],
        workers=2,
        log_dir=tmp_path_factory.mktemp("scale-logs"),
        product_env=product_env,
    )
    cluster = Cluster(spec)
    try:
        cluster.start()
        yield Scaled(cluster, spec.api_urls[0], history_url, product_env)
    except BaseException:
        print(cluster.tails())
        raise
    finally:
        cluster.stop()
        engine_for(history_url).dispose()


@pytest.fixture
def on_cluster(scaled: Scaled, monkeypatch: pytest.MonkeyPatch, sandbox: Any) -> Iterator[Scaled]:
    """This test process (and the receiver's thread) pointed at the cluster and its history."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    auth = scaled.cluster.spec.auth_string
    client = {"PREFECT_API_URL": scaled.api_url, "PREFECT_API_AUTH_STRING": auth}
    for name, value in {**scaled.product_env, **client}.items():
        monkeypatch.setenv(name, value)
    with temporary_settings(
        updates={PREFECT_API_URL: scaled.api_url, PREFECT_API_AUTH_STRING: auth}
    ):
        try:
            yield scaled
        except BaseException:
            print(scaled.cluster.tails())
            raise
