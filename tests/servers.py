"""Serve an ASGI app with uvicorn on a free loopback port, in a background thread.

The tests and the benchmarks (``bench/_common.py``) share these; nothing here needs pytest.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.responses import JSONResponse

__all__ = ["InjectedFailures", "free_port", "serve_config_in_thread", "serve_in_thread"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class InjectedFailures:
    """A test endpoint's failure switch: the next few requests get an error status."""

    _failures: int = 0
    _status: int = 500
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, *, status: int = 500) -> None:
        """Answer ``status`` (without recording the body) to the next ``count`` requests."""
        with self._lock:
            self._failures, self._status = count, status

    def _injected_failure(self) -> JSONResponse | None:
        """Use up one injected failure, if any is left: its answer (call with the lock held)."""
        if self._failures <= 0:
            return None
        self._failures -= 1
        return JSONResponse({"error": "injected failure"}, status_code=self._status)


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the main thread owns signals
        pass


@contextlib.contextmanager
def serve_config_in_thread(config: uvicorn.Config) -> Iterator[str]:
    """Run uvicorn with ``config`` in a daemon thread; yield its base URL until the block ends."""
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{config.port}")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {config.host}:{config.port}")
        time.sleep(0.01)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextlib.contextmanager
def serve_in_thread(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 and yield its base URL until the block ends."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port or free_port(),
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    with serve_config_in_thread(config) as url:
        yield url
