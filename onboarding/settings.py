"""Every knob of the product, in one place.

Two environment prefixes:

* ``D360_*``        how to reach the 360dialog Partner API (:class:`HubSettings`);
* ``ONBOARDING_*``  how the orchestrator behaves (:class:`Settings`).

Secrets are :class:`~pydantic.SecretStr`: their ``repr``/``str`` is ``**********``. Call
:func:`load_settings` (or :func:`load_hub_settings`) rather than the constructors: it turns a
validation error into one :class:`ConfigError` sentence that names the environment variable.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "MIN_WEBHOOK_TOKEN",
    "ConfigError",
    "HubSettings",
    "Settings",
    "explain",
    "load_hub_settings",
    "load_settings",
    "require_strong_webhook_token",
]

DEFAULT_HUB_URL = "https://hub.360dialog.io/api/v2"
MIN_WEBHOOK_TOKEN = 22  # characters: 128 bits of URL-safe base64 (secrets.token_urlsafe(16))


class ConfigError(Exception):
    """A setting is missing, malformed or contradicts another; the message names the variable.

    One line per problem; it never quotes a value that may be secret.
    """


class HubSettings(BaseSettings):
    """How to reach the 360dialog Partner API (environment prefix ``D360_``)."""

    model_config = SettingsConfigDict(env_prefix="D360_", env_file=".env", extra="ignore")

    hub_url: str = Field(DEFAULT_HUB_URL, description="Partner API base URL.")
    partner_id: str | None = Field(None, description="Your partner id (Partner Hub URL).")
    api_key: SecretStr | None = Field(
        None, description="Partner API key, sent as `X-API-Key` (recommended)."
    )
    username: str | None = Field(
        None, description="Partner Hub e-mail for the deprecated bearer-token login."
    )
    password: SecretStr | None = Field(None, description="Password for `D360_USERNAME`.")
    timeout: float = Field(10.0, gt=0, description="Seconds before one request times out.")
    page_size: int = Field(100, ge=1, le=10_000, description="Items asked for per list page.")
    max_concurrency: int = Field(
        8, ge=1, description="Requests in flight at once to the Partner API."
    )

    @field_validator("hub_url")
    @classmethod
    def _hub_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_auth_method(self) -> HubSettings:
        if self.api_key is not None and self.username is not None:
            raise ValueError("set either D360_API_KEY or D360_USERNAME + D360_PASSWORD, not both")
        if (self.username is None) != (self.password is None):
            missing = "D360_PASSWORD" if self.password is None else "D360_USERNAME"
            raise ValueError(f"{missing} is not set (the bearer login needs both)")
        return self

    @property
    def has_credentials(self) -> bool:
        """True when an API key or a username/password pair is configured."""
        return self.api_key is not None or self.username is not None

    def require_credentials(self) -> None:
        """Raise :class:`ConfigError` unless a partner id and one auth method are set."""
        if not self.partner_id:
            raise ConfigError("D360_PARTNER_ID is not set: the Partner API needs your partner id")
        if not self.has_credentials:
            raise ConfigError(
                "no Partner API credentials: set D360_API_KEY (or D360_USERNAME and D360_PASSWORD)"
            )


class Settings(BaseSettings):
    """How the orchestrator behaves (environment prefix ``ONBOARDING_``)."""

    model_config = SettingsConfigDict(env_prefix="ONBOARDING_", env_file=".env", extra="ignore")

    database_url: str = Field(
        f"sqlite:///{Path('onboarding.db').absolute()}",
        description="History database (SQLAlchemy URL); `postgresql+psycopg://...` for PostgreSQL.",
    )
    poll_initial: float = Field(10.0, gt=0, description="First wait (s) between channel reads.")
    poll_max: float = Field(300.0, gt=0, description="Longest wait (s) between channel reads.")
    setup_deadline: float = Field(
        86_400.0, gt=0, description="Seconds from a run's start until setting_up is a failure."
    )
    owner_lease: float = Field(
        900.0,
        gt=0,
        description="Seconds without progress before another run may take over an onboarding.",
    )
    retries: int = Field(
        4, ge=0, description="Retries of a Partner API call that failed transiently (5xx, 429)."
    )
    retry_delay: float = Field(
        2.0, ge=0, description="First retry delay (s); doubles per retry, with jitter."
    )
    create_api_key: bool = Field(
        True, description="Create the channel's Messaging API key once it is ready."
    )
    callback_url: str | None = Field(
        None, description="Partner completion callback (JSON POST, HMAC-SHA256 signed)."
    )
    callback_secret: SecretStr | None = Field(
        None, description="Key that signs completion callbacks (`X-Onboarding-Signature`)."
    )
    callback_retry_window: float = Field(
        86_400.0,
        gt=0,
        description="Seconds a key that the callback did not take is retried (a fresh key each "
        "attempt) before the `callback_failed` alert.",
    )
    callback_timeout: float = Field(
        15.0, gt=0, description="Seconds the partner's callback may take to answer."
    )
    permission_alert_after: float = Field(
        86_400.0,
        gt=0,
        description="Seconds an onboarding waits for the client's permission before the "
        "`permission_pending` alert.",
    )
    alert_urls: str = Field(
        "", description="Comma-separated Apprise URLs (json://, slack://, mailto://, ...)."
    )
    alert_repeat: float = Field(
        14_400.0, gt=0, description="Seconds between repeats of an alert that still holds."
    )
    webhook_token: SecretStr | None = Field(
        None,
        description="Path token of the partner-webhook URL `/hooks/360dialog/{token}`; "
        f"`receiver` and `up` need at least {MIN_WEBHOOK_TOKEN} characters (`up` makes one "
        "when unset).",
    )
    webhook_hmac_secret: SecretStr | None = Field(
        None,
        description="Also require `X-Hub-Signature-256` (HMAC-SHA256) from a signing relay.",
    )
    public_url: str | None = Field(
        None,
        description="This receiver's public base URL (`https://hooks.example.com`); "
        "`webhook register` points the partner webhook at it plus `/hooks/360dialog/{token}`.",
    )
    channel_webhook_url: str | None = Field(
        None,
        description="Set each new number's own webhook (Messaging API `/v1/configs/webhook`) to "
        "this URL before the callback; `{channel_id}` and `{client_id}` are filled in.",
    )
    channel_webhook_headers: SecretStr | None = Field(
        None,
        description="Headers sent with the number's webhook events, a JSON object "
        '(`{"Authorization": "Basic ..."}`).',
    )
    metrics: bool = Field(
        False, description="Serve Prometheus metrics at `/metrics` on the receiver."
    )
    webhook_max_bytes: int = Field(
        262_144, ge=1024, description="Largest webhook body accepted (bigger gets 413)."
    )
    replay_after: float = Field(
        30.0,
        ge=0,
        description="Seconds an unhandled inbox event waits before the watcher replays it.",
    )
    signup_redirect: str | None = Field(
        None,
        description="Where `/signup/360dialog` sends the client's browser (303, same query "
        "string); unset: a small page saying the number is being set up.",
    )
    signup_rate_limit: int = Field(
        30, ge=1, description="Signup redirects accepted per client IP per minute (then: 303 only)."
    )
    signup_api_budget: int = Field(
        60,
        ge=2,
        description="Partner API calls all signup redirects together may spend per minute "
        "(each costs at most 2); beyond it a signup is recorded unverified, the sweep finds it.",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated proxy addresses or networks (`10.0.0.0/8`) whose "
        "`X-Forwarded-For` names the signup client; unset: the header is ignored.",
    )
    unknown_channel_grace: float = Field(
        900.0,
        ge=0,
        description="Seconds an onboarding looks again for a channel the Partner API does not "
        "know (a webhook may come first); then it fails `channel not found`.",
    )
    replay_max_attempts: int = Field(
        10,
        ge=1,
        description="Handoff attempts an inbox event gets before it is marked `dead` (with an "
        "alert); after the second, waits double from `ONBOARDING_REPLAY_AFTER` (at most 1 h).",
    )
    inbox_retention_days: float = Field(
        30.0,
        gt=0,
        description="Days a settled inbox event (handled, ignored, rejected, dead) is kept; "
        "unhandled ones are never pruned.",
    )
    handoff_queue: int = Field(
        64,
        ge=1,
        description="Handoffs the receiver holds in memory at once; beyond it an event is "
        "stored, answered `202` and left to the watcher's replay.",
    )
    sweep_interval: float = Field(60.0, gt=0, description="Seconds between watcher sweeps.")
    max_running: int = Field(
        8,
        ge=1,
        description="Onboarding flow runs executing at once (waiting ones hold none): `up` "
        "sets the `onboarding` pool's concurrency limit and its worker's `--limit` to one more "
        "(for the sweep).",
    )
    wake_limit: int = Field(
        50,
        ge=1,
        description="Onboarding runs due or executing at once: when more channels settle, the "
        "watcher wakes the rest as these finish. Raise it with the number of workers.",
    )
    executor_poll: float = Field(
        0.5,
        gt=0,
        description="Seconds between the worker's looks for due flow runs: `up` starts its "
        "worker with `PREFECT_WORKER_QUERY_SECONDS` set to this.",
    )
    prefect_port: int = Field(4200, description="Port of the local Prefect server `up` starts.")
    receiver_host: str = Field("127.0.0.1", description="Address the webhook receiver binds.")
    receiver_port: int = Field(8080, description="Port the webhook receiver listens on.")
    sandbox_port: int = Field(
        8360, description="Port of the Partner API sandbox `up --demo` starts."
    )
    home: Path = Field(
        Path(".onboarding"),
        description="Where `up` keeps its local state (0700): Prefect's home and database, logs, "
        "the Prefect API auth string, the full webhook URL, the `--demo` history.",
    )

    @field_validator("callback_url")
    @classmethod
    def _callback_url_is_https(cls, value: str | None) -> str | None:
        # The callback carries a live API key: plain http only where it cannot leave the machine.
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme == "https" and parts.hostname:
            return value.strip()
        if parts.scheme == "http" and _is_loopback(parts.hostname):
            return value.strip()
        if parts.scheme == "http":
            raise ValueError(
                f"must use https:// (the callback carries the channel's API key); http:// is "
                f"allowed only on loopback (127.0.0.1, ::1, localhost), not on {parts.hostname!r}"
            )
        raise ValueError("must be an https:// URL (http:// only on loopback)")

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL (this receiver as the internet reaches it)")
        if parts.query or parts.fragment:
            raise ValueError("must be a base URL without a query string or fragment")
        return value.strip().rstrip("/")

    @field_validator("channel_webhook_url")
    @classmethod
    def _channel_webhook_url_is_template(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        from onboarding.channel_webhook import check_template

        return check_template(value.strip())

    @field_validator("channel_webhook_headers")
    @classmethod
    def _channel_webhook_headers_are_json(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from onboarding.channel_webhook import parse_headers

        parse_headers(value)  # raises ValueError with a message that quotes no value
        return value

    @field_validator("signup_redirect")
    @classmethod
    def _signup_redirect_is_http(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.strip().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL (the page the client's browser is sent to)")
        return value.strip()

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_addresses(cls, value: str) -> str:
        for part in (piece.strip() for piece in value.split(",")):
            if part:
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{part!r} is not an IP address or network (e.g. 10.0.0.1, 10.0.0.0/8)"
                    ) from None
        return value.strip()

    @model_validator(mode="after")
    def _poll_bounds(self) -> Settings:
        if self.poll_max < self.poll_initial:
            raise ValueError(
                "ONBOARDING_POLL_MAX must be >= ONBOARDING_POLL_INITIAL "
                f"(got {self.poll_max} < {self.poll_initial})"
            )
        if self.callback_url and self.callback_secret is None:
            raise ValueError("ONBOARDING_CALLBACK_SECRET is not set (ONBOARDING_CALLBACK_URL is)")
        if self.channel_webhook_url and not (self.callback_url and self.create_api_key):
            raise ValueError(
                "ONBOARDING_CHANNEL_WEBHOOK_URL is set with the key the completion callback "
                "delivers: it needs ONBOARDING_CALLBACK_URL and ONBOARDING_CREATE_API_KEY=true"
            )
        return self

    @property
    def alert_url_list(self) -> list[str]:
        """The Apprise URLs, split and stripped."""
        return [url.strip() for url in self.alert_urls.split(",") if url.strip()]

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``ONBOARDING_TRUSTED_PROXIES`` as networks (a bare address is a /32 or /128)."""
        parts = (piece.strip() for piece in self.trusted_proxies.split(","))
        return [ipaddress.ip_network(part, strict=False) for part in parts if part]


def require_strong_webhook_token(token: SecretStr | None) -> None:
    """Raise :class:`ConfigError` when a set webhook token is shorter than 128 bits of text.

    The token is the only thing that authenticates a partner webhook; the message never quotes it.
    """
    value = token.get_secret_value() if token is not None else ""
    if value and len(value) < MIN_WEBHOOK_TOKEN:
        raise ConfigError(
            f"ONBOARDING_WEBHOOK_TOKEN is too short ({len(value)} characters): use at least "
            f"{MIN_WEBHOOK_TOKEN} random URL-safe characters, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(24))"`'
        )


def _is_loopback(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def explain(error: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the environment variable, never quoting its value.

    Only pydantic's message is used: ``str(error)`` would echo the input (``input_value=...``),
    which for a URL or a token is the secret itself.
    """
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        message = " ".join(item["msg"].removeprefix("Value error, ").split())
        lines.append(f"{prefix}{field.upper()}: {message}" if field else message)
    return "\n".join(lines)


def load_hub_settings(**overrides: object) -> HubSettings:
    """Read :class:`HubSettings` from the environment, raising :class:`ConfigError` on bad input."""
    try:
        return HubSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(explain(exc, "D360_")) from None


def load_settings(**overrides: object) -> Settings:
    """Read :class:`Settings` from the environment, raising :class:`ConfigError` on bad input."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(explain(exc, "ONBOARDING_")) from None
