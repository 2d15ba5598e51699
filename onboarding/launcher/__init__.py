"""``onboarding up``: run the whole product on one machine and supervise it.

Modules: ``run`` (the order things start and stop in), ``children`` (child processes in their own
process groups), ``prefect_server`` (find or start the Prefect API), ``auth`` (its auth string and
who gets it), ``sandbox`` (the built-in Partner API for ``--demo``), ``receiver`` (the webhook
receiver on ``up``'s loop),
``eventlog`` (the live one-line-per-event log), ``report`` (start panel and summary),
``probe`` (ports, health checks, waiting with a deadline).

Core code: Prefect, ``flows`` and ``tasks`` are imported lazily, after ``up`` has pointed the
environment at the Prefect API it uses.
"""

from __future__ import annotations

from onboarding.launcher.children import ChildExited
from onboarding.launcher.probe import LaunchError
from onboarding.launcher.run import up

__all__ = ["ChildExited", "LaunchError", "up"]
