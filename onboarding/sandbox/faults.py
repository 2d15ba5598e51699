"""Injected faults: the next N matching Partner API requests fail, stall or return garbage."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Fault", "FaultQueue"]

FaultKind = Literal["status", "slow", "malformed"]


@dataclass
class Fault:
    """One queued fault, applied to the next ``count`` requests it matches.

    With ``duration`` (seconds) it applies instead to every matching request until that long
    after it was queued, whatever ``count`` says (a rate limit lasting a minute, say).
    """

    kind: FaultKind
    count: int = 1
    http_status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    path_contains: str | None = None
    method: str | None = None
    body: str = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    duration: float | None = None
    expires_at: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.duration is not None and self.expires_at is None:
            self.expires_at = time.monotonic() + self.duration

    def expired(self) -> bool:
        """True once a timed fault's ``duration`` has passed."""
        return self.expires_at is not None and time.monotonic() >= self.expires_at

    def matches(self, method: str, path: str) -> bool:
        """True when this fault applies to a ``method`` request for ``path``."""
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in path

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view for the control API."""
        view = asdict(self)
        view.pop("expires_at")
        return view


class FaultQueue:
    """Faults in the order they were added; each request consumes at most one."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Queue ``fault``."""
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault that matches this request, with one use consumed, or ``None``."""
        with self._lock:
            self._faults = [fault for fault in self._faults if not fault.expired()]
            for fault in self._faults:
                if fault.duration is not None and fault.matches(method, path):
                    return fault
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The faults still queued."""
        with self._lock:
            self._faults = [fault for fault in self._faults if not fault.expired()]
            return [fault.describe() for fault in self._faults]
