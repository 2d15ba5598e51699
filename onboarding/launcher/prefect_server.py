"""The Prefect API ``up`` uses: the one at ``PREFECT_API_URL``, or a local server it starts.

The local server keeps everything under ``<home>/prefect`` (``PREFECT_HOME``: its SQLite
database, its settings), so it never touches ``~/.prefect``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from onboarding.launcher.children import Child, Children
from onboarding.launcher.probe import LaunchError, get_ok, port_is_open, wait_until

__all__ = ["DEPLOYMENTS", "PrefectEndpoint", "ensure_prefect", "wait_for_deployments"]

LOCAL_HOST = "127.0.0.1"
STARTUP_TIMEOUT = (
    120.0  # a fresh machine's first start migrates Prefect's database (slow under load)
)
DEPLOYMENTS = ("onboard-channel/onboard-channel", "watch-channels/watch-channels")
EXIT_CONFIG = 3


@dataclass(frozen=True)
class PrefectEndpoint:
    """Where the Prefect API and UI are, and how ``up`` came by them."""

    api_url: str
    ui_url: str
    origin: str  # "started", "running" (found on the port) or "PREFECT_API_URL"

    @property
    def started(self) -> bool:
        """True when ``up`` started this server (and so stops it)."""
        return self.origin == "started"


def ui_url_for(api_url: str) -> str:
    """The UI's address: the API URL without its ``/api`` suffix."""
    base = api_url.rstrip("/")
    return base.removesuffix("/api") or base


async def ensure_prefect(
    *,
    external_api_url: str | None,
    port: int,
    home: Path,
    children: Children,
    env: MutableMapping[str, str],
) -> PrefectEndpoint:
    """Find or start the Prefect API and point ``env`` (the children's environment) at it."""
    if external_api_url:
        api_url = external_api_url.rstrip("/")
        if not await get_ok(f"{api_url}/health", within=5.0):
            raise LaunchError(
                f"PREFECT_API_URL={api_url} does not answer (GET /health); start that server "
                "or unset PREFECT_API_URL to let `onboarding up` run a local one",
                EXIT_CONFIG,
            )
        env["PREFECT_API_URL"] = api_url
        return PrefectEndpoint(api_url, ui_url_for(api_url), "PREFECT_API_URL")

    api_url = f"http://{LOCAL_HOST}:{port}/api"
    env["PREFECT_API_URL"] = api_url
    env["PREFECT_HOME"] = str((home / "prefect").absolute())
    if port_is_open(LOCAL_HOST, port):
        if await get_ok(f"{api_url}/health"):
            return PrefectEndpoint(api_url, ui_url_for(api_url), "running")
        raise LaunchError(
            f"port {port} on {LOCAL_HOST} is taken by something that is not a Prefect server; "
            "set ONBOARDING_PREFECT_PORT to a free port",
            EXIT_CONFIG,
        )
    server_env = {
        **env,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_UI_ENABLED": "true",
    }
    child = children.start(
        "the Prefect server",
        ["-m", "prefect", "server", "start", "--host", LOCAL_HOST, "--port", str(port)],
        env=server_env,
        log_name="prefect-server.log",
    )
    await wait_until(
        lambda: get_ok(f"{api_url}/health"),
        what=f"the Prefect server on port {port}",
        within=STARTUP_TIMEOUT,
        child=child,
    )
    return PrefectEndpoint(api_url, ui_url_for(api_url), "started")


async def wait_for_deployments(api_url: str, *, within: float, child: Child) -> None:
    """Wait until every deployment in :data:`DEPLOYMENTS` is registered with the API."""

    async def registered() -> bool:
        for name in DEPLOYMENTS:
            if not await get_ok(f"{api_url}/deployments/name/{name}"):
                return False
        return True

    await wait_until(registered, what="the served deployments", within=within, child=child)
