"""The sandbox's memory: partners, clients, channels, tokens, faults, counters, timers.

Every mutation runs on the server's event loop (through the HTTP handlers or timers it scheduled);
other threads, such as a test process, only read.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from onboarding.sandbox.faults import FaultQueue
from onboarding.sandbox.models import iso, new_channel, new_client, new_id, utcnow
from onboarding.sandbox.webhooks import WebhookSender

SANDBOX_PARTNER_ID = "sandbox-partner"
SANDBOX_API_KEY = "sandbox-key"
SANDBOX_USERNAME = "partner@example.com"
SANDBOX_PASSWORD = "sandbox-password"
OTHER_PARTNER_ID = "other-partner"
OTHER_API_KEY = "other-key"
DEFAULT_ADMIN_KEY = "sandbox-admin"

DEFAULT_TOKEN_EXPIRES_IN = 86_400
DEFAULT_MAX_LIMIT = 1000
KEY_SHAPES = ("flat", "wrapped", "key")
"""How ``POST .../api_keys`` answers: ``{id, address, api_key, app_id}``, the same wrapped in
``{"api_keys": [...]}``, or flat with the value named ``key`` (all seen in real integrations)."""
PERMISSION_MESSAGE = (
    "The client has not granted the partner permission to manage this channel's API keys yet"
)
Json = dict[str, Any]
# The settings ``POST /sandbox/config`` may change and a reset restores (see SandboxState).
TUNABLE = (
    "token_expires_in",
    "max_limit",
    "key_shape",
    "token_type",
    "send_expires_in",
    "running_after",
    "live_after",
)


@dataclass
class Partner:
    """A seeded partner account and its credentials."""

    id: str
    brand_name: str
    api_key: str
    username: str
    password: str
    webhook_url: str | None = None
    partner_redirect_url: str | None = None

    def to_json(self) -> Json:
        """The partner object of ``GET /partners/{pid}``."""
        return {
            "id": self.id,
            "brand_name": self.brand_name,
            "webhook_url": self.webhook_url,
            "partner_redirect_url": self.partner_redirect_url,
        }


def _seed_partners() -> dict[str, Partner]:
    return {
        SANDBOX_PARTNER_ID: Partner(
            SANDBOX_PARTNER_ID,
            "Sandbox Partner",
            SANDBOX_API_KEY,
            SANDBOX_USERNAME,
            SANDBOX_PASSWORD,
            partner_redirect_url="https://partner.example.com/onboarded",
        ),
        OTHER_PARTNER_ID: Partner(
            OTHER_PARTNER_ID, "Other Partner", OTHER_API_KEY, "other@example.com", "other-password"
        ),
    }


@dataclass
class SandboxState:
    """Everything the sandbox knows; ``app.state.sandbox`` holds one."""

    admin_key: str = DEFAULT_ADMIN_KEY
    clock: Callable[[], datetime] = utcnow
    token_expires_in: int = DEFAULT_TOKEN_EXPIRES_IN
    max_limit: int = DEFAULT_MAX_LIMIT
    key_shape: str = "flat"
    token_type: str = "Bearer"
    send_expires_in: bool = True
    # Seconds after channel_ready that channel_running / channel_live follow (None: never).
    running_after: float = 0.0
    live_after: float | None = None
    partners: dict[str, Partner] = field(default_factory=_seed_partners)
    clients: dict[str, Json] = field(default_factory=dict)
    channels: dict[str, Json] = field(default_factory=dict)
    tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    api_key_counts: Counter[str] = field(default_factory=Counter)
    # Generating a channel's key revokes its earlier ones (as the 360dialog Hub documents).
    active_api_keys: dict[str, str] = field(default_factory=dict)
    # The Messaging API side: each working key's value -> its channel, and what
    # ``POST /v1/configs/webhook`` set for each channel (the number's own webhook).
    channel_keys: dict[str, str] = field(default_factory=dict)
    channel_webhooks: dict[str, Json] = field(default_factory=dict)
    # Channels whose client has not granted permission yet -> the status key creation answers.
    permission_pending: dict[str, int] = field(default_factory=dict)
    api_key_refusals: Counter[str] = field(default_factory=Counter)
    request_counts: Counter[str] = field(default_factory=Counter)
    request_total: int = 0
    faults: FaultQueue = field(default_factory=FaultQueue)
    timers: set[asyncio.TimerHandle] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    webhooks: WebhookSender = field(init=False)

    def __post_init__(self) -> None:
        self.webhooks = WebhookSender(clock=self.clock)
        self._initial = {name: getattr(self, name) for name in TUNABLE}

    # -- auth ---------------------------------------------------------------------------------

    def partner_for_api_key(self, key: str) -> Partner | None:
        """The partner owning API key ``key``."""
        return next(
            (p for p in self.partners.values() if secrets.compare_digest(p.api_key, key)), None
        )

    def issue_token(self, username: str, password: str) -> tuple[str, int] | None:
        """A bearer token and its lifetime for a correct login, else ``None``."""
        for partner in self.partners.values():
            if secrets.compare_digest(partner.username, username) and secrets.compare_digest(
                partner.password, password
            ):
                token = secrets.token_urlsafe(24)
                expires = self.clock() + timedelta(seconds=self.token_expires_in)
                self.tokens[token] = (partner.id, expires)
                return token, self.token_expires_in
        return None

    def partner_for_token(self, token: str) -> Partner | None:
        """The partner a still-valid bearer ``token`` was issued to."""
        entry = self.tokens.get(token)
        if entry is None or self.clock() >= entry[1]:
            return None
        return self.partners[entry[0]]

    # -- requests -----------------------------------------------------------------------------

    def count_request(self, key: str) -> None:
        """Count one Partner API request under ``"METHOD /route-template"``."""
        self.request_counts[key] += 1
        self.request_total += 1

    def reset_counts(self) -> None:
        """Zero the request counters."""
        self.request_counts = Counter()
        self.request_total = 0

    def issue_channel_key(self, channel_id: str, value: str) -> None:
        """Make ``value`` the channel's one working Messaging API key (earlier ones stop)."""
        for old in [key for key, owner in self.channel_keys.items() if owner == channel_id]:
            del self.channel_keys[old]
        self.channel_keys[value] = channel_id

    def channel_for_key(self, value: str) -> str | None:
        """The channel whose working key is ``value``, compared in constant time."""
        for key, channel_id in self.channel_keys.items():
            if secrets.compare_digest(key.encode(), value.encode()):
                return channel_id
        return None

    # -- objects ------------------------------------------------------------------------------

    def now(self) -> str:
        """The sandbox clock as an ISO string."""
        return iso(self.clock())

    def webhook_url(self, partner_id: str) -> str | None:
        """Where ``partner_id``'s webhooks go."""
        partner = self.partners.get(partner_id)
        return partner.webhook_url if partner else None

    def create_client(
        self,
        *,
        partner_id: str = SANDBOX_PARTNER_ID,
        name: str | None = None,
        email: str | None = None,
        client_id: str | None = None,
        send_webhook: bool = True,
    ) -> Json:
        """Add a client and tell the partner (``client_created``)."""
        client_id = client_id or new_id("CL")
        client = new_client(
            client_id=client_id,
            partner_id=partner_id,
            name=name or f"Client {client_id[:6]}",
            email=email or f"owner+{client_id[:6]}@example.com",
            now=self.now(),
        )
        self.clients[client_id] = client
        if send_webhook:
            self.webhooks.send(self.webhook_url(partner_id), "client_created", client)
        return client

    def create_channel(
        self,
        *,
        client: Json,
        channel_id: str | None = None,
        phone_number: str | None = None,
        availability_status: str | None = "setting_up",
        status: str | None = None,
        now: str | None = None,
        send_webhook: bool = True,
        needs_permission: int | None = None,
    ) -> Json:
        """Add a channel for ``client`` and tell the partner (``channel_created``).

        ``availability_status=None`` leaves the field out of the object (as some real answers
        do); ``needs_permission`` (403 or 400) refuses key creation until :meth:`grant_permission`.
        """
        channel_id = channel_id or new_id("CH")
        while channel_id in self.channels:
            channel_id = new_id("CH")
        if status is None:
            status = {"setting_up": "created", "ready": "ready", "error": "error"}.get(
                availability_status, "created"
            )
        channel = new_channel(
            channel_id=channel_id,
            client=client,
            phone_number=phone_number or f"+4915{secrets.randbelow(10**9):09d}",
            availability_status=availability_status,
            status=status,
            now=now or self.now(),
        )
        if availability_status is None:
            del channel["availability_status"]
        self.channels[channel_id] = channel
        if needs_permission is not None:
            self.permission_pending[channel_id] = needs_permission
        if send_webhook:
            self.webhooks.send(self.webhook_url(client["partner_id"]), "channel_created", channel)
        return channel

    def grant_permission(self, channel_id: str, *, send_webhook: bool = True) -> Json:
        """The client allows key creation: ``channel_permission_granted`` with the channel.

        360dialog's event carries the channel object, whose ``status`` is ``ready`` once the
        channel is; integrations create the key when ``data.status == "ready"``.
        """
        channel = self.channels[channel_id]
        self.permission_pending.pop(channel_id, None)
        if send_webhook:
            url = self.webhook_url(channel["partner_id"])
            self.webhooks.send(url, "channel_permission_granted", channel)
        return channel

    def _send_later(self, delay: float | None, channel_id: str, event: str) -> None:
        """Send ``event`` for the channel ``delay`` seconds from now (never when ``None``)."""
        if delay is None:
            return

        def send() -> None:
            channel = self.channels.get(channel_id)
            if channel is not None:
                self.webhooks.send(self.webhook_url(channel["partner_id"]), event, channel)

        if delay <= 0:
            send()
        else:
            self.call_later(delay, send)

    def update_channel(
        self,
        channel_id: str,
        *,
        availability_status: str | None = None,
        status: str | None = None,
        error: str | None = None,
        send_webhook: bool = True,
    ) -> Json:
        """Change a channel now, telling the partner what 360dialog would.

        ``status`` turning ``unverified`` (submitted to Meta) sends ``channel_submitted``; turning
        ``ready`` sends ``channel_ready`` ("ready to be registered"), then ``channel_running``
        ``running_after`` seconds later and ``channel_live`` ``live_after`` seconds later.
        """
        channel = self.channels[channel_id]
        was_ready = channel.get("availability_status") == "ready"
        was_status = channel.get("status")
        if availability_status is not None:
            channel["availability_status"] = availability_status
            if status is None and availability_status in ("ready", "error"):
                status = availability_status
        if status is not None:
            channel["status"] = status
        if error is not None or availability_status == "error":
            channel["setup_info"]["error"] = error or "Setup failed"
        elif availability_status == "ready":
            channel["setup_info"]["error"] = None
            channel["waba_account"]["fb_account_status"] = "approved"
        channel["modified_at"] = self.now()
        url = self.webhook_url(channel["partner_id"])
        if send_webhook and channel["status"] == "unverified" and was_status != "unverified":
            self.webhooks.send(url, "channel_submitted", channel)
        if send_webhook and channel.get("availability_status") == "ready" and not was_ready:
            self.webhooks.send(url, "channel_ready", channel)
            self._send_later(self.running_after, channel_id, "channel_running")
            self._send_later(self.live_after, channel_id, "channel_live")
        return channel

    # -- scheduling ---------------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the server loop after ``delay`` seconds (cancelled by reset)."""
        loop = asyncio.get_running_loop()
        holder: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self.timers.discard(holder[0])
            callback()

        holder.append(loop.call_later(max(delay, 0.0), fire))
        self.timers.add(holder[0])

    def start_task(self, coro: Any, name: str) -> None:
        """Run ``coro`` as a background task owned by the sandbox (cancelled by reset)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel_scheduled(self) -> None:
        """Cancel every timer and background task."""
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()
        for task in list(self.tasks):
            task.cancel()

    def reset(self) -> None:
        """Back to the seeded partners: no clients, channels, faults, counts or webhook URLs."""
        self.cancel_scheduled()
        self.partners = _seed_partners()
        self.clients.clear()
        self.channels.clear()
        self.tokens.clear()
        self.api_key_counts = Counter()
        self.active_api_keys = {}
        self.channel_keys = {}
        self.channel_webhooks = {}
        self.permission_pending = {}
        self.api_key_refusals = Counter()
        self.reset_counts()
        self.faults.clear()
        for name, value in self._initial.items():
            setattr(self, name, value)
        self.webhooks.reset()
