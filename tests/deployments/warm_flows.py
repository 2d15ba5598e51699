"""A flow the warm-start test runs in a subprocess; importable, so it pickles by reference."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from prefect import flow


@flow(name="where-am-i", persist_result=False)
def where_am_i(report: str) -> None:
    """Write down which process ran this flow and what it had imported before it started."""
    Path(report).write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "onboarding_flow_imported": "flows.onboard" in sys.modules,
                "api_url": os.environ.get("PREFECT_API_URL"),
            }
        )
    )
