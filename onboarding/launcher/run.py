"""``onboarding up``: start the whole product in order, show it, stop it in reverse order.

Start order: the Prefect API (found or started, always behind an auth string) -> the receiver (in
this process; handoffs held until the deployments exist) -> the sandbox with ``--demo`` (its
first signups reach the receiver at once) -> the deployments (prefect.yaml, applied with
``prefect deploy``) and an ``onboarding`` worker on their pool -> a first sweep at once (it finds
the sandbox up).
Stop order: the receiver, then each child process group, newest first.

A first Ctrl-C or SIGTERM stops everything gracefully and the command exits 0 (stopping is how a
long-running ``up`` normally ends); a second one cuts the children's grace period short.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Coroutine, MutableMapping
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import Engine

from onboarding.demo import demo_database_path, demo_database_url
from onboarding.escaping import markup_text as escape
from onboarding.launcher.auth import auth_string_path
from onboarding.launcher.banner import StartInfo, start_panel, summary
from onboarding.launcher.children import ChildExited, Children
from onboarding.launcher.deploy import apply_deployments, worker_command
from onboarding.launcher.eventlog import EventLog, NameFor
from onboarding.launcher.prefect_server import ensure_prefect, wait_for_deployments
from onboarding.launcher.probe import LaunchError
from onboarding.launcher.receiver import (
    GatedHandoff,
    RunningReceiver,
    hook_url,
    start_receiver,
    webhook_token,
    write_hook_url,
)
from onboarding.launcher.sandbox import start_sandbox, use_sandbox_credentials
from onboarding.launcher.webhook_warning import webhook_warning
from onboarding.settings import HubSettings, Settings
from onboarding.store import StoreError, make_engine, masked_url, upgrade

__all__ = ["up"]

DEPLOYMENT_TIMEOUT = 120.0
CHILD_TUNING = {
    # glibc's allocator keeps up to 8 arenas per core for a threaded process; two keep the
    # Prefect server's and the worker's peak RSS 35 to 95 MB lower at the same CPU
    # (BENCHMARKS.md, "Each server setting, measured"). Set in the environment, it wins.
    "MALLOC_ARENA_MAX": "2",
}
DEMO_IGNORED = (
    "ONBOARDING_CALLBACK_URL",
    "ONBOARDING_CALLBACK_SECRET",
    "ONBOARDING_ALERT_URLS",
    "ONBOARDING_CHANNEL_WEBHOOK_URL",
    "ONBOARDING_CHANNEL_WEBHOOK_HEADERS",
)
DEMO_CHANNEL_WEBHOOK = "/sandbox/demo/numbers/{client_id}/{channel_id}"
DEMO_CHANNEL_WEBHOOK_HEADERS = '{"X-Demo-Partner": "demo"}'
DEMO_IGNORES = "ONBOARDING_CALLBACK_URL/_SECRET and ONBOARDING_ALERT_URLS are ignored"


class _Up:
    """One ``onboarding up``: what it started, and the signals that stop it."""

    def __init__(
        self,
        settings: Settings,
        hub: HubSettings,
        *,
        demo: bool,
        demo_minutes: float | None,
        console: Console,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.demo = demo
        self.demo_minutes = demo_minutes
        self.console = console
        self.home = settings.home.absolute()
        self.log_dir = self.home / "logs"
        self.children = Children(self.log_dir)
        self.engine: Engine = make_engine(settings.database_url)
        self.receiver: RunningReceiver | None = None
        self.name_for: NameFor | None = None
        self.events: EventLog | None = None
        self.gate: GatedHandoff | None = None
        self._stop = asyncio.Event()
        self._hurry = False

    # -- signals ------------------------------------------------------------------------------

    def _on_signal(self) -> None:
        if self._stop.is_set():
            self._hurry = True
            self.console.print("[yellow]stopping now[/]")
            return
        self._stop.set()
        self.console.print("[yellow]stopping…[/]")

    async def _until_stopped(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run ``work``: True when it finished, False when a stop signal came first."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            stop.cancel()
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return False

    # -- start --------------------------------------------------------------------------------

    async def _start(self) -> None:
        """Start everything; print the panel once it all answers."""
        # The receiver's handoff in this process reads its settings from the environment too.
        os.environ["ONBOARDING_DATABASE_URL"] = self.settings.database_url
        env = {**CHILD_TUNING, **os.environ}
        env["PYTHONUNBUFFERED"] = "1"
        if self.demo:
            ignore_partner_settings(env, self.settings)
        prefect = await ensure_prefect(
            external_api_url=os.environ.get("PREFECT_API_URL"),
            port=self.settings.prefect_port,
            home=self.home,
            children=self.children,
            env=env,
        )
        # Before Prefect is first imported here: it reads its settings once, at import.
        for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_HOME"):
            if name in env:
                os.environ[name] = env[name]
        use_sandbox = self.demo
        if use_sandbox:
            use_sandbox_credentials(self.settings.sandbox_port, env)

        from onboarding.orchestration.flow_runs import run_name, sweep_now
        from onboarding.orchestration.webhooks import reconcile_event

        self.name_for = run_name
        events = EventLog(self.engine, run_name)
        self.gate = gate = GatedHandoff(reconcile_event)
        token, generated = webhook_token(self.settings)
        self.receiver = await start_receiver(
            settings=self.settings,
            engine=self.engine,
            token=token,
            handoff=gate,
            log_dir=self.log_dir,
        )
        base = self.receiver.base_url
        sandbox_url = None
        if use_sandbox:
            sandbox_url = await start_sandbox(
                port=self.settings.sandbox_port,
                webhook_url=hook_url(base, token, masked=False),
                children=self.children,
                env=env,
            )
            self.console.print(
                "[bold yellow]Demo:[/] running the built-in Partner API sandbox with a demo "
                f"scenario at {sandbox_url}/api/v2 (its partner webhook URL is this receiver), "
                f"history in {escape(masked_url(self.settings.database_url))}. "
                f"{DEMO_IGNORES}: nothing is sent to your callback or alert sinks (keys go to "
                "the sandbox's demo partner, whose callback is down for three minutes; each new "
                "number's own webhook is set on the sandbox's Messaging API first, see "
                f"{sandbox_url}/sandbox/channel_webhooks with the sandbox admin key).",
                highlight=False,
            )
        slots = self.settings.max_running + 1  # the onboardings, and one for the sweep
        await apply_deployments(
            env=env,
            sweep_interval=self.settings.sweep_interval,
            log_path=self.log_dir / "deploy.log",
            concurrency_limit=slots,
        )
        worker = self.children.start(
            "the worker",
            worker_command(limit=slots),
            env={**env, "PREFECT_WORKER_QUERY_SECONDS": str(self.settings.executor_poll)},
            log_name="worker.log",
        )
        await wait_for_deployments(prefect, within=DEPLOYMENT_TIMEOUT, child=worker)
        await sweep_now()  # reconcile at once, not one sweep interval after a (re)start
        gate.open()
        self.events = events
        login = auth_string_path(self.home) if prefect.origin != "PREFECT_API_URL" else None
        full_url = hook_url(base, token, masked=False)
        self.console.print(
            start_panel(
                StartInfo(
                    prefect_ui=prefect.ui_url,
                    prefect_origin=prefect.origin,
                    prefect_login=login,
                    receiver_url=hook_url(base, token),
                    receiver_url_file=write_hook_url(self.home, full_url),
                    sandbox_url=sandbox_url,
                    database_url=self.settings.database_url,
                    log_dir=self.log_dir,
                    demo_minutes=self.demo_minutes,
                )
            )
        )
        if not use_sandbox:
            self.console.print(
                "Set the receiver URL (full, with its token, in the file named above) as the "
                "partner webhook URL in the Partner Hub.",
                highlight=False,
            )
            warning = await webhook_warning(self.settings, self.hub, token)
            if warning:
                self.console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
            if generated:
                self.console.print(
                    "[dim]The token was generated for this run: set ONBOARDING_WEBHOOK_TOKEN "
                    "to keep the URL the same across restarts.[/]"
                )

    # -- run ----------------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Return when the demo window ends; raise if a child or the receiver dies first."""
        seconds = self.demo_minutes * 60 if self.demo_minutes is not None else None
        deadline = time.monotonic() + seconds if seconds is not None else None
        while deadline is None or time.monotonic() < deadline:
            self.children.check()
            if self.receiver is not None and self.receiver.task.done():
                raise ChildExited(f"the receiver stopped (see {self.log_dir / 'receiver.log'})")
            left = 1.0 if deadline is None else deadline - time.monotonic()
            await asyncio.sleep(max(0.0, min(1.0, left)))
        self.console.print(f"[bold]Demo window of {self.demo_minutes:g} min is over.[/]")

    def _print_events(self) -> None:
        if self.events is None:
            return
        for line in self.events.poll():
            self.console.print(line.render(), highlight=False, soft_wrap=True)

    async def main(self) -> int:
        """Start, run until stopped or the demo window ends, stop; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        started = follower = None
        try:
            started = await self._until_stopped(self._start())
            if started and self.events is not None:
                follower = asyncio.create_task(self.events.follow(self.console))
                await self._until_stopped(self._watch())
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await follower
                with contextlib.suppress(Exception):
                    self._print_events()
            await self._shutdown()
        if started and self.name_for is not None:
            self.console.print(summary(self.engine, self.name_for, demo=self.demo))
        self.engine.dispose()
        return 0

    async def _shutdown(self) -> None:
        """Stop the receiver, then every child (newest first)."""
        with self.console.status("stopping…"):
            if self.gate is not None:
                self.gate.close()
            if self.receiver is not None:
                await self.receiver.stop()
            await self.children.stop_all(hurry=lambda: self._hurry)
        self.console.print("stopped")


def demo_settings(settings: Settings) -> Settings:
    """``settings`` for ``up --demo``: its own history under the home, the sandbox's demo partner
    as the callback and as each number's own webhook, no alerts."""
    demo_database_path(settings.home).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return settings.model_copy(
        update={
            "database_url": demo_database_url(settings.home),
            "callback_url": f"http://127.0.0.1:{settings.sandbox_port}/sandbox/demo/callback",
            "callback_secret": SecretStr(secrets.token_urlsafe(16)),
            "alert_urls": "",
            "channel_webhook_url": f"http://127.0.0.1:{settings.sandbox_port}{DEMO_CHANNEL_WEBHOOK}",
            "channel_webhook_headers": SecretStr(DEMO_CHANNEL_WEBHOOK_HEADERS),
        }
    )


def ignore_partner_settings(env: MutableMapping[str, str], settings: Settings) -> None:
    """Replace the partner-facing settings in ``env`` and in this process (over any ``.env``)
    with the demo's: the sandbox's demo callback, no alert sinks."""
    secret = settings.callback_secret.get_secret_value() if settings.callback_secret else ""
    demo = {
        "ONBOARDING_CALLBACK_URL": settings.callback_url or "",
        "ONBOARDING_CALLBACK_SECRET": secret,
        "ONBOARDING_ALERT_URLS": "",
        "ONBOARDING_CHANNEL_WEBHOOK_URL": settings.channel_webhook_url or "",
        "ONBOARDING_CHANNEL_WEBHOOK_HEADERS": DEMO_CHANNEL_WEBHOOK_HEADERS,
    }
    for name in DEMO_IGNORED:
        env[name] = os.environ[name] = demo[name]


def up(
    settings: Settings,
    hub: HubSettings,
    *,
    demo: bool = False,
    demo_minutes: float | None = None,
    console: Console,
) -> int:
    """Run the whole product until Ctrl-C/SIGTERM or ``demo_minutes``; returns the exit code.

    ``demo`` runs the built-in sandbox on a history database of its own and ignores the
    callback and alert settings. Raises :class:`LaunchError` (with its exit code) or
    :class:`~onboarding.launcher.children.ChildExited` after stopping what was started.
    """
    os.umask(0o077)  # databases, logs and state files 0600, directories 0700 (children too)
    settings.home.absolute().mkdir(mode=0o700, parents=True, exist_ok=True)
    if demo:
        settings = demo_settings(settings)
    try:
        upgrade(settings.database_url)
    except StoreError as exc:
        raise LaunchError(f"history database: {exc}", 3) from None
    console.print(f"History database {escape(masked_url(settings.database_url))} is up to date")
    runner = _Up(settings, hub, demo=demo, demo_minutes=demo_minutes, console=console)
    return asyncio.run(runner.main())
