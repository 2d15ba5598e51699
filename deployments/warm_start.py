"""Start served flow runs from a warm fork server instead of a cold interpreter.

Prefect's runner starts every flow run of a served deployment with
``prefect.flow_engine.run_flow_in_subprocess``, which uses ``multiprocessing``'s ``spawn``
start method: a new interpreter that imports Prefect and the flow again, about 1 CPU-s per run
start on our 2-core machine, most of an onboarding's own cost (BENCHMARKS.md, "Warm starts").

A ``forkserver`` context with the flows preloaded does that import once: each run is then
forked from an interpreter that has already imported everything, and pays only for its own
work. Prefect's function is used unchanged; only the start method it asks ``multiprocessing``
for is swapped, inside ``prefect.flow_engine`` alone. The fork server is a single-threaded
process that only imports modules (no connections, no threads), so forking it is safe; each run
still builds its own settings from the environment the runner passes it.

Process workers (``prefect worker start``, prefect.yaml) start runs with ``python -m
prefect.engine`` and are not affected.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
from typing import Any

from prefect import flow_engine

__all__ = ["PRELOAD", "install_warm_start", "warm_start_installed"]

logger = logging.getLogger(__name__)

PRELOAD = ["prefect.flow_engine", "flows.onboard", "flows.watch", "flows.report"]
"""Modules the fork server imports once, so that the runs forked from it do not."""


class _WarmMultiprocessing:
    """Stands in for ``multiprocessing`` inside ``prefect.flow_engine``: "spawn" means warm."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self._context = context

    def get_context(self, method: str | None = None) -> multiprocessing.context.BaseContext:
        if method == "spawn":
            return self._context
        return multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def warm_start_installed() -> bool:
    """Whether served flow runs start from the warm fork server in this process."""
    return isinstance(getattr(flow_engine, "multiprocessing", None), _WarmMultiprocessing)


def install_warm_start(preload: list[str] | None = None) -> bool:
    """Make this process's runner fork flow runs from a warm server; False if not possible.

    Call it before serving. Without ``forkserver`` (not on POSIX) or if Prefect no longer
    starts runs the way this expects, runs start as Prefect does by default and a warning says
    so.
    """
    if warm_start_installed():
        return True
    prefect_as_expected = hasattr(flow_engine, "run_flow_in_subprocess") and hasattr(
        flow_engine, "multiprocessing"
    )
    if not prefect_as_expected or "forkserver" not in multiprocessing.get_all_start_methods():
        logger.warning("warm starts unavailable here: flow runs start a fresh interpreter")
        return False
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload or PRELOAD))
    flow_engine.multiprocessing = _WarmMultiprocessing(context)
    return True
