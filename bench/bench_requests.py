"""Benchmark 1: Partner API requests per sweep, the watcher's reads against the naive poller.

    python bench/bench_requests.py [--n 100 1000 10000] [--page-size 100 1000]

For each N and page size, against a fresh sandbox on loopback holding N ``setting_up`` channels
(plus 5 ``error`` and 5 ``ready`` ones), requests are counted by the sandbox (not the client):

* ``steady``: one sweep's reads as the product does them
  (:func:`onboarding.hub.scan.read_partner_channels`), every channel tracked as a previous sweep saw
  it, none changed since;
* ``1% ready``: the same after 1% of them turned ``ready`` since that sweep (they must be found
  in the ``ready`` list);
* ``naive``: one pass of ``bench/naive_poller.py`` (one ``GET`` per pending channel; its initial
  listing is not counted: it happens once, not per pass).

Target: at most ceil(N / page) + a small constant, and >= 50x fewer than naive at N = 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import Sandbox, machine, serve_sandbox
from naive_poller import list_pending, poll_once

from onboarding.hub.scan import SweepRead, read_partner_channels

EXTRA = 5  # error and ready channels besides the N setting_up ones
CONSTANT = 2  # the error list (one page here) and one page of the ready list


def _last_sweep(tracked: dict[str, datetime | None]) -> datetime | None:
    """The sweep before this one: when the tracked channels were last seen setting_up."""
    return min((seen for seen in tracked.values() if seen is not None), default=None)


async def product_read(
    sandbox: Sandbox, page_size: int, tracked: dict[str, datetime | None]
) -> tuple[int, float, SweepRead]:
    """One sweep's reads: requests counted by the sandbox, wall seconds, what was read."""
    async with sandbox.hub(page_size=page_size) as hub:
        sandbox.zero_counts()
        start = time.perf_counter()
        read = await read_partner_channels(hub, tracked=tracked, ready_since=_last_sweep(tracked))
        seconds = time.perf_counter() - start
    return sandbox.counts()[0], seconds, read


async def naive_pass(sandbox: Sandbox, concurrency: int) -> tuple[int, float, int]:
    """One naive pass: requests counted by the sandbox, wall seconds, channels read."""
    headers = {"X-API-Key": sandbox.api_key}
    async with httpx.AsyncClient(base_url=sandbox.api_url, headers=headers, timeout=120) as http:
        pending = await list_pending(http, sandbox.partner_id)
        sandbox.zero_counts()
        start = time.perf_counter()
        statuses = await poll_once(http, sandbox.partner_id, pending, concurrency=concurrency)
        seconds = time.perf_counter() - start
    return sandbox.counts()[0], seconds, len(statuses)


async def measure(
    sandbox: Sandbox,
    n: int,
    page_size: int,
    concurrency: int,
    naive_cache: dict[int, tuple[int, float, int]],
) -> list[str]:
    """The table rows for one N and page size (the naive pass, which has no page, once per N)."""
    sandbox.reset()
    ids = sandbox.bulk(n)
    sandbox.bulk(EXTRA, "error")
    sandbox.bulk(EXTRA, "ready")
    seen_at = datetime.now(UTC)
    tracked: dict[str, datetime | None] = dict.fromkeys(ids, seen_at)
    rows = []
    steady, steady_s, read = await product_read(sandbox, page_size, tracked)
    assert len(read.channels) >= n + EXTRA, (len(read.channels), n)  # and recent ready ones
    assert not read.missing, read.missing
    if n not in naive_cache:
        naive_cache[n] = await naive_pass(sandbox, concurrency)
    naive, naive_s, polled = naive_cache[n]
    assert polled == n, (polled, n)
    moved = ids[::100][: max(n // 100, 1)]
    for channel_id in moved:
        sandbox.set_status(channel_id, "ready")
    changed, changed_s, read = await product_read(sandbox, page_size, tracked)
    ready = sum(1 for cid in moved if read.channels[cid].availability_status == "ready")
    assert ready == len(moved), (ready, len(moved))
    assert not read.missing, read.missing
    bound = math.ceil(n / page_size) + CONSTANT
    for label, count, seconds in (("steady", steady, steady_s), ("1% ready", changed, changed_s)):
        rows.append(
            f"{n:>6,} {page_size:>5} {label:<9} {count:>8,} {bound:>6,} {naive:>7,}"
            f" {naive / count:>7.0f}x {seconds:>8.3f} {naive_s:>8.2f}"
        )
    return rows


async def run(ns: list[int], page_sizes: list[int], concurrency: int) -> None:
    """Measure every N at every page size and print the table."""
    print(f"# {machine()}; naive concurrency {concurrency}")
    print(
        f"{'N':>6} {'page':>5} {'sweep':<9} {'product':>8} {'bound':>6} {'naive':>7}"
        f" {'ratio':>8} {'prod_s':>8} {'naive_s':>8}"
    )
    naive_cache: dict[int, tuple[int, float, int]] = {}
    with serve_sandbox() as sandbox:
        for n in ns:
            for page_size in page_sizes:
                for row in await measure(sandbox, n, page_size, concurrency, naive_cache):
                    print(row, flush=True)


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--page-size", type=int, nargs="+", default=[100, 1_000])
    parser.add_argument("--concurrency", type=int, default=1, help="naive requests in flight")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.page_size, args.concurrency))


if __name__ == "__main__":
    main()
