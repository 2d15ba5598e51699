"""Child processes of ``onboarding up``: started in their own process group, stopped as a group.

Each child runs in a new session (so a Ctrl-C at the terminal reaches only ``up``, which decides
how to stop them), writes stdout and stderr to its own log file, and is stopped by sending SIGTERM
to its whole process group (the Prefect server's web process goes with it), then SIGKILL if it is
still there after a grace period. An ``atexit`` hook kills whatever is left if ``up`` itself
crashes; and on Linux each child asks the kernel for SIGTERM when ``up`` dies
(``PR_SET_PDEATHSIG``), so an ``up`` killed outright (``kill -9``, the OOM killer) leaves no
orphan holding a port: each child stops as it would on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

__all__ = ["Child", "ChildExited", "Children", "open_log"]

GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal this process gets when its parent dies


def open_log(path: Path) -> BinaryIO:
    """Open ``path`` for appending, readable by its owner only (0600; its directory 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def die_with_parent() -> None:
    """In a forked child before exec: get SIGTERM when the parent dies (Linux; elsewhere no-op).

    Also covers a parent that died between ``fork`` and this call: then the child is already
    re-parented, and stops itself.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class ChildExited(Exception):
    """A child process ended while ``up`` still needed it; the message names its log file."""


class Child:
    """One supervised child process and its log file."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.process.pid

    def running(self) -> bool:
        """True while the child process has not exited."""
        return self.process.poll() is None

    def check(self) -> None:
        """Raise :class:`ChildExited` if the child has exited."""
        code = self.process.poll()
        if code is not None:
            raise ChildExited(f"{self.name} exited with code {code} (see {self.log_path})")

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (nothing if it is gone already)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def stop(
        self, grace: float = GRACE_SECONDS, hurry: Callable[[], bool] = lambda: False
    ) -> None:
        """SIGTERM the group, wait up to ``grace`` seconds for the child, then SIGKILL the group.

        The wait ends early once ``hurry()`` returns True (a second Ctrl-C).
        """
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        # A child process offers nothing to await: poll it.
        while self.running() and time.monotonic() < deadline and not hurry():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        # Kill the group even when the leader exited: its subprocesses may linger.
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)

    def kill(self) -> None:
        """SIGKILL the group at once and reap the child (the last-resort path)."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)


class Children:
    """The children ``up`` started, in start order; stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[Child] = []
        self._pid = os.getpid()
        atexit.register(self.kill_all)

    def start(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        log_name: str,
        cwd: Path | None = None,
    ) -> Child:
        """Start ``python <args>`` as ``name`` in a new session, logging to ``log_dir/log_name``."""
        log_path = self.log_dir / log_name
        with open_log(log_path) as log:
            process = subprocess.Popen(
                [sys.executable, *args],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._die_with_us,
            )
        child = Child(name, process, log_path)
        self._children.append(child)
        return child

    def _die_with_us(self) -> None:
        die_with_parent()
        if os.getppid() != self._pid:  # ``up`` died before the child could ask
            os.kill(os.getpid(), signal.SIGTERM)

    def check(self) -> None:
        """Raise :class:`ChildExited` if any child has exited."""
        for child in self._children:
            child.check()

    async def stop_all(
        self, grace: float = GRACE_SECONDS, hurry: Callable[[], bool] = lambda: False
    ) -> None:
        """Stop every child, newest first, each with ``grace`` seconds to exit by itself."""
        while self._children:
            await self._children.pop().stop(grace, hurry)

    def kill_all(self) -> None:
        """SIGKILL every child still listed (``atexit`` and crash path)."""
        while self._children:
            self._children.pop().kill()
