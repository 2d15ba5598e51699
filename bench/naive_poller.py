"""The naive baseline: what a partner writes today to notice channels that finished setting up.

    python bench/naive_poller.py --base-url https://hub.360dialog.io/api/v2 \
        --partner-id PID --api-key KEY [--interval 60] [--passes 0] [--concurrency 1]

One initial listing of the ``setting_up`` channels, then, every ``--interval`` seconds, one
``GET`` per still-pending channel: the channel list filtered by ``id`` (the only single-channel
read the Partner API reference documents). A channel that left ``setting_up`` is printed and
dropped. One *pass* is one read of every pending channel; ``--passes 0`` polls until none is left.

Importable: :func:`list_pending` and :func:`poll_once` are what ``bench_requests.py`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

import httpx

__all__ = ["list_pending", "poll_once"]

PAGE = 100


def _client(base_url: str, api_key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": api_key}, timeout=30)


async def list_pending(http: httpx.AsyncClient, partner_id: str) -> list[str]:
    """The ids of every ``setting_up`` channel (the one listing the script starts with)."""
    ids: list[str] = []
    offset = 0
    while True:
        params = {
            "filters": json.dumps({"availability_status": "setting_up"}),
            "limit": PAGE,
            "offset": offset,
        }
        response = await http.get(f"/partners/{partner_id}/channels", params=params)
        response.raise_for_status()
        page = response.json()
        ids += [channel["id"] for channel in page["partner_channels"]]
        offset += len(page["partner_channels"])
        if not page["partner_channels"] or offset >= page["total"]:
            return ids


async def _status(http: httpx.AsyncClient, partner_id: str, channel_id: str) -> str | None:
    params = {"filters": json.dumps({"id": channel_id})}
    response = await http.get(f"/partners/{partner_id}/channels", params=params)
    response.raise_for_status()
    found = response.json()["partner_channels"]
    return found[0]["availability_status"] if found else None


async def poll_once(
    http: httpx.AsyncClient, partner_id: str, ids: list[str], *, concurrency: int = 1
) -> dict[str, str | None]:
    """One pass: read every channel in ``ids`` once; its ``availability_status`` by id."""
    gate = asyncio.Semaphore(concurrency)
    statuses: dict[str, str | None] = {}

    async def read(channel_id: str) -> None:
        async with gate:
            statuses[channel_id] = await _status(http, partner_id, channel_id)

    if concurrency == 1:
        for channel_id in ids:  # the loop most scripts are: one request after the other
            statuses[channel_id] = await _status(http, partner_id, channel_id)
    else:
        await asyncio.gather(*(read(channel_id) for channel_id in ids))
    return statuses


async def _run(args: argparse.Namespace) -> None:
    async with _client(args.base_url, args.api_key) as http:
        pending = await list_pending(http, args.partner_id)
        print(f"{len(pending)} channel(s) setting_up", flush=True)
        done = 0
        while pending and (args.passes == 0 or done < args.passes):
            statuses = await poll_once(http, args.partner_id, pending, concurrency=args.concurrency)
            for channel_id, status in statuses.items():
                if status != "setting_up":
                    print(f"{channel_id}: {status}", flush=True)
            pending = [cid for cid, status in statuses.items() if status == "setting_up"]
            done += 1
            if pending and (args.passes == 0 or done < args.passes):
                await asyncio.sleep(args.interval)


def main() -> None:
    """Parse the arguments and poll."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("D360_HUB_URL"), required=False)
    parser.add_argument("--partner-id", default=os.environ.get("D360_PARTNER_ID"))
    parser.add_argument("--api-key", default=os.environ.get("D360_API_KEY"))
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between passes")
    parser.add_argument("--passes", type=int, default=0, help="stop after this many (0: never)")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight")
    args = parser.parse_args()
    if not (args.base_url and args.partner_id and args.api_key):
        parser.error("--base-url, --partner-id and --api-key (or D360_* variables) are required")
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
