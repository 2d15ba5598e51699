"""Run one function in several threads released together by a barrier, so they really race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["race"]

T = TypeVar("T")


def race(work: Callable[[], T], *, racers: int = 2, timeout: float = 30) -> list[T]:
    """Call ``work`` in ``racers`` threads at once; return the results or raise the first error."""
    barrier = threading.Barrier(racers)
    results: list[T] = []
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            barrier.wait(timeout=timeout)
            results.append(work())
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=racer, name=f"racer-{n}") for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    if len(results) != racers:
        raise TimeoutError(f"only {len(results)} of {racers} racers finished within {timeout}s")
    return results
