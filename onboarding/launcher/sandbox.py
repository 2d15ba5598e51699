"""The built-in Partner API sandbox ``up --demo`` runs instead of the real Partner API.

The child runs this module (``python -m onboarding.launcher.sandbox``) rather than
``onboarding sandbox --webhook-url ...``: the webhook URL holds the receiver's secret token, and
a command line is visible to every user of the machine (``ps``) and gets echoed into the log.
Here the URL travels in the child's environment and is never printed.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from onboarding.launcher.children import Children
from onboarding.launcher.probe import LaunchError, port_is_free, start_until_healthy

__all__ = ["SCENARIO", "sandbox_environment", "start_sandbox", "use_sandbox_credentials"]

SCENARIO = "demo"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
EXIT_CONFIG = 3
WEBHOOK_URL_VARIABLE = "ONBOARDING_UP_SANDBOX_WEBHOOK_URL"


def sandbox_environment(port: int) -> dict[str, str]:
    """The ``D360_*`` settings that point a Partner API client at the sandbox on ``port``."""
    from onboarding.sandbox import SANDBOX_API_KEY, SANDBOX_PARTNER_ID

    return {
        "D360_HUB_URL": f"http://{HOST}:{port}/api/v2",
        "D360_PARTNER_ID": SANDBOX_PARTNER_ID,
        "D360_API_KEY": SANDBOX_API_KEY,
    }


def use_sandbox_credentials(port: int, env: MutableMapping[str, str]) -> None:
    """Put the sandbox's credentials in ``env`` (the children's) and in this process's environment.

    ``up``'s own process needs them too: the receiver's handoff reads ``D360_*`` settings.
    """
    values = sandbox_environment(port)
    env.update(values)
    os.environ.update(values)
    for name in ("D360_USERNAME", "D360_PASSWORD"):  # the sandbox key is the one auth method
        env.pop(name, None)
        os.environ.pop(name, None)


async def start_sandbox(
    *, port: int, webhook_url: str, children: Children, env: MutableMapping[str, str]
) -> str:
    """Start the sandbox (demo scenario) sending partner webhooks to ``webhook_url``.

    Returns the sandbox's base URL once ``/sandbox/healthz`` answers.
    """
    if not port_is_free(HOST, port):
        raise LaunchError(
            f"port {port} on {HOST} is in use; set ONBOARDING_SANDBOX_PORT to a free port",
            EXIT_CONFIG,
        )
    base_url = f"http://{HOST}:{port}"
    await start_until_healthy(
        children,
        "the Partner API sandbox",
        ["-m", "onboarding.launcher.sandbox", str(port)],
        env={**env, WEBHOOK_URL_VARIABLE: webhook_url},
        log_name="sandbox.log",
        port=port,
        health_url=f"{base_url}/sandbox/healthz",
        within=STARTUP_TIMEOUT,
    )
    return base_url


def _serve(port: int) -> None:
    """The child's body: serve the demo sandbox on ``port`` until SIGTERM."""
    import uvicorn

    from onboarding.sandbox import create_app

    app = create_app(scenario=SCENARIO, webhook_url=os.environ.pop(WEBHOOK_URL_VARIABLE))
    print(f"Partner API sandbox (scenario: {SCENARIO}) on http://{HOST}:{port}", flush=True)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    import sys

    _serve(int(sys.argv[1]))
