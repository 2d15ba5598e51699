"""Asking whether something answers: ports, health endpoints, waiting with a deadline."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import httpx

from onboarding.launcher.children import Child, Children

__all__ = [
    "LaunchError",
    "get_ok",
    "port_is_free",
    "port_is_open",
    "start_until_healthy",
    "wait_until",
]


class LaunchError(Exception):
    """``up`` cannot start the product; the message says why and what to change."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def port_is_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def get_ok(
    url: str, *, within: float = 2.0, headers: Mapping[str, str] | None = None
) -> bool:
    """True when ``GET url`` (with ``headers``) answers 2xx within ``within`` seconds."""
    try:
        async with httpx.AsyncClient(timeout=within, trust_env=False) as http:
            response = await http.get(url, headers=dict(headers or {}))
    except httpx.HTTPError:
        return False
    return response.is_success


async def wait_until(
    ready: Callable[[], Awaitable[bool]],
    *,
    what: str,
    within: float,
    child: Child | None = None,
    interval: float = 0.25,
) -> None:
    """Poll ``ready`` until it returns True; :class:`LaunchError` after ``within`` seconds.

    When ``child`` is given, its early exit ends the wait at once with its log file named.
    """
    deadline = time.monotonic() + within
    while True:
        if child is not None and not child.running():
            raise LaunchError(
                f"{child.name} exited while starting (code {child.process.returncode}); "
                f"see {child.log_path}"
            )
        if await ready():
            return
        if time.monotonic() > deadline:
            where = f"; see {child.log_path}" if child is not None else ""
            raise LaunchError(f"{what} did not come up within {within:.0f} s{where}")
        await asyncio.sleep(interval)


async def start_until_healthy(
    children: Children,
    name: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    log_name: str,
    port: int,
    health_url: str,
    within: float,
) -> Child:
    """Start ``python <args>`` as ``name`` serving on ``port``; return once ``health_url`` is OK."""
    child = children.start(name, args, env=env, log_name=log_name)
    await wait_until(
        lambda: get_ok(health_url), what=f"{name} on port {port}", within=within, child=child
    )
    return child
