"""The webhook receiver inside the ``up`` process: uvicorn on ``up``'s own event loop.

Handoffs wait behind a gate until the deployments are registered, so the deliveries that arrive
while ``up`` is still starting (the sandbox's first signups) are stored, answered, and handed on
as soon as Prefect can take them, instead of failing and waiting for the watcher's replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine

from onboarding.escaping import OneLineFormatter
from onboarding.launcher.auth import private_file
from onboarding.launcher.children import open_log
from onboarding.launcher.probe import LaunchError, port_is_free
from onboarding.receiver import Handoff, HandoffEvent, create_app_from_settings, serve_config
from onboarding.redact import ScrubFilter, mask_token, secret_values
from onboarding.settings import Settings

__all__ = [
    "GatedHandoff",
    "RunningReceiver",
    "hook_url",
    "start_receiver",
    "webhook_token",
    "write_hook_url",
]

EXIT_CONFIG = 3
HOOK_PREFIX = "/hooks/360dialog/"
HOOK_URL_FILE = "webhook-url"


def webhook_token(settings: Settings) -> tuple[SecretStr, bool]:
    """``ONBOARDING_WEBHOOK_TOKEN``, or a random one for this run; True when it was generated."""
    if settings.webhook_token is not None and settings.webhook_token.get_secret_value():
        return settings.webhook_token, False
    return SecretStr(secrets.token_urlsafe(16)), True


def hook_url(base_url: str, token: SecretStr, *, masked: bool = True) -> str:
    """The partner-webhook URL; ``masked`` shows only the token's first four characters."""
    value = mask_token(token) if masked else token.get_secret_value()
    return f"{base_url}{HOOK_PREFIX}{value}"


def write_hook_url(home: Path, url: str) -> Path:
    """Keep the full webhook URL (it holds the token) in ``home/webhook-url``, mode 0600."""
    return private_file(home / HOOK_URL_FILE, url + "\n")


class GatedHandoff:
    """A handoff that holds events until :meth:`open` (or ``timeout`` seconds), then passes on."""

    def __init__(self, handoff: Handoff, *, timeout: float = 180.0) -> None:
        self._handoff = handoff
        self._timeout = timeout
        self._gate = asyncio.Event()
        self._opened = False

    def open(self) -> None:
        """Let held and future events through."""
        self._opened = True
        self._gate.set()

    def close(self) -> None:
        """``up`` is stopping before the gate opened: held events fail now, for the replay."""
        self._gate.set()

    async def __call__(self, event: HandoffEvent) -> str:
        """Wait for the gate, then hand ``event`` on (failures are kept for the replay)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gate.wait(), self._timeout)
        if self._gate.is_set() and not self._opened:
            raise RuntimeError("onboarding up stopped before Prefect was ready; replayed later")
        return await self._handoff(event)


class _LoopServer(uvicorn.Server):
    """uvicorn without its own signal handlers: ``up`` owns Ctrl-C and stops it in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class RunningReceiver:
    """The receiver serving on ``up``'s loop, and its public addresses."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], base_url: str) -> None:
        self._server = server
        self.task = task
        self.base_url = base_url

    async def stop(self) -> None:
        """Stop serving (in-flight handoffs get the receiver's drain time) and wait for it."""
        self._server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.task


def _log_to_file(log_dir: Path, secrets: list[str]) -> None:
    """The receiver's log records go to ``log_dir/receiver.log`` (0600), secrets masked.

    Each record is one line whatever the outside text it quotes (:class:`OneLineFormatter`).
    """
    path = log_dir / "receiver.log"
    open_log(path).close()  # created private before logging opens it
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter(secrets))
    logger = logging.getLogger("onboarding.receiver")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False


async def start_receiver(
    *,
    settings: Settings,
    engine: Engine,
    token: SecretStr,
    handoff: Handoff,
    log_dir: Path,
) -> RunningReceiver:
    """Serve the receiver on ``ONBOARDING_RECEIVER_HOST:PORT`` and wait until it listens."""
    host, port = settings.receiver_host, settings.receiver_port
    if not port_is_free(host, port):
        raise LaunchError(
            f"port {port} on {host} is in use; set ONBOARDING_RECEIVER_PORT to a free port",
            EXIT_CONFIG,
        )
    settings = settings.model_copy(update={"webhook_token": token})
    _log_to_file(log_dir, secret_values(settings))
    app = create_app_from_settings(settings, handoff=handoff, engine=engine)
    server = _LoopServer(serve_config(app, host, port, log_level="warning"))
    task = asyncio.create_task(server.serve(), name="receiver")
    while not server.started:
        if task.done():
            raise LaunchError(f"the receiver could not start on {host}:{port}")
        await asyncio.sleep(0.05)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - comparison
    return RunningReceiver(server, task, f"http://{shown}:{port}")
