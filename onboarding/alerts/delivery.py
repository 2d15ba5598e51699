"""Sending one message to each Apprise URL, one outcome per URL, and never raising.

Each URL gets its own :class:`apprise.Apprise` object so a failing sink is known (and recorded,
and retried) on its own. Errors are reported as text with every part of the URL that could hold
a token removed; sinks are named by :func:`sink_label`, never by the URL itself. Apprise is
imported on first use: it costs ~0.2 s and the core must stay cheap to import.
"""

from __future__ import annotations

import functools
import hashlib
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import urlsplit

from onboarding.alerts.messages import Message

__all__ = ["DeliveryResult", "Notifier", "fingerprint", "fingerprint_in", "send", "sink_label"]

# Schemes whose "host" is a real host name. Many Apprise schemes put a token where the host
# would be (slack://TokenA/TokenB/TokenC, pagerduty://key@key, tgram://bottoken/...), so for
# anything not listed here only the scheme is shown.
_HOSTNAME_SCHEMES = frozenset(
    {
        "json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos", "ntfy", "ntfys",
        "gotify", "gotifys", "mmost", "mmosts", "apprise", "apprises", "rocket", "rockets",
        "matrix", "matrixs", "ncloud", "nclouds", "nctalk", "nctalks",
    }
)  # fmt: skip
_MAX_ERROR = 500
_FINGERPRINT = re.compile(r"\[sink #([0-9a-f]{8})\] ")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one message to one sink; ``error`` is redacted text, None when sent.

    ``sink`` is safe to store and show (:func:`sink_label`); ``fingerprint`` (8 hex digits of the
    URL's SHA-256) tells two sinks with the same label apart and finds the URL again for a retry.
    A failed result's ``error`` starts with ``[sink #<fingerprint>]`` so the history keeps it.
    """

    sink: str
    fingerprint: str
    ok: bool
    error: str | None = None


def fingerprint(url: str) -> str:
    """8 hex digits of the URL's SHA-256: an identity for the sink that reveals nothing of it."""
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def fingerprint_in(error: str | None) -> str | None:
    """The fingerprint a failed delivery's error text starts with, if any."""
    match = _FINGERPRINT.match(error or "")
    return match.group(1) if match else None


def sink_label(url: str) -> str:
    """A name for the sink that is safe to store: the scheme, plus the host when it is one.

    ``json://user:pw@hooks.example.com:8443/t/SECRET`` becomes ``json://hooks.example.com:8443``;
    ``slack://TokenA/TokenB/TokenC`` becomes ``slack://``.
    """
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower() if rest and scheme.isalnum() else "invalid"
    host = ""
    if scheme in _HOSTNAME_SCHEMES:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "")[:120]
            if host and parts.port:
                host = f"{host}:{parts.port}"
        except ValueError:
            host = ""
    return f"{scheme}://{host}"


def _secret_fragments(url: str) -> list[str]:
    """Every piece of ``url`` that might be a credential, longest first (a real host is kept)."""
    _, _, rest = url.partition("://")
    safe: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.scheme in _HOSTNAME_SCHEMES:
            safe = {parts.hostname or "", str(parts.port)}
    except ValueError:
        pass
    pieces = {p for p in re.split(r"[/:@?&=#,;]+", rest) if len(p) >= 3 and p not in safe}
    return sorted(pieces, key=len, reverse=True)


def _redact(text: str, url: str) -> str:
    """``text`` without ``url`` or any of its possibly secret parts, clipped to one short line."""
    placeholder = "\x00sink\x00"
    text = text.replace(url, placeholder)
    for piece in _secret_fragments(url):
        text = text.replace(piece, "***")
    text = " ".join(text.replace(placeholder, sink_label(url)).split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


@functools.cache
def _apprise() -> ModuleType:
    """Import Apprise and load its plugins once, hiding the stdlib deprecation warnings they raise.

    Apprise's e-mail plugin imports ``imghdr`` (deprecated in 3.11); under ``-W error`` that
    import would fail, so the one-time plugin load happens with those warnings ignored.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise.instantiate("json://localhost")
    return apprise


def _log_text(result: object) -> str:
    """The warnings and errors Apprise recorded for one notify() call (Apprise >= 2 keeps them)."""
    lines = []
    for service in getattr(result, "results", ()):
        for entry in service.logs():
            if entry.level in {"WARNING", "ERROR", "CRITICAL"}:
                lines.append(entry.message)
    return " | ".join(lines)


def _failed(url: str, reason: str) -> DeliveryResult:
    mark = fingerprint(url)
    return DeliveryResult(sink_label(url), mark, False, f"[sink #{mark}] {_redact(reason, url)}")


def send(
    url: str,
    message: Message,
    *,
    notify_type: str = "failure",
    connect_timeout: float = 3.0,
    read_timeout: float = 5.0,
) -> DeliveryResult:
    """Deliver ``message`` to one Apprise URL; any failure comes back as a redacted result.

    Short socket timeouts are applied unless the URL sets its own (``?cto=``/``?rto=``).
    """
    try:
        apprise = _apprise()
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            return _failed(url, "not a valid Apprise URL (unknown scheme or missing fields)")
        if not re.search(r"[?&]cto=", url):
            plugin.socket_connect_timeout = connect_timeout
        if not re.search(r"[?&]rto=", url):
            plugin.socket_read_timeout = read_timeout
        notifier = apprise.Apprise()
        notifier.add(plugin)
        result = notifier.notify(
            body=message.body,
            title=message.title,
            notify_type=notify_type,
            body_format="markdown",
        )
        if result:
            return DeliveryResult(sink_label(url), fingerprint(url), True)
        return _failed(url, _log_text(result) or "the sink did not accept the notification")
    except Exception as exc:  # a sink must never break an onboarding
        return _failed(url, f"{type(exc).__name__}: {exc}")


class Notifier:
    """The configured sinks: sends to each URL separately and finds a URL again by fingerprint."""

    def __init__(
        self, urls: Iterable[str], *, connect_timeout: float = 3.0, read_timeout: float = 5.0
    ) -> None:
        cleaned = [url.strip() for url in urls if url.strip()]
        self._urls = {fingerprint(url): url for url in cleaned}
        self._timeouts = {"connect_timeout": connect_timeout, "read_timeout": read_timeout}

    def __repr__(self) -> str:
        return f"Notifier(sinks={self.sinks!r})"

    @property
    def sinks(self) -> list[str]:
        """The sinks as ``label #fingerprint`` (safe to show and store)."""
        return [f"{sink_label(url)} #{mark}" for mark, url in self._urls.items()]

    @property
    def fingerprints(self) -> set[str]:
        """The fingerprints of the configured sinks."""
        return set(self._urls)

    def send_all(self, message: Message, *, notify_type: str) -> list[DeliveryResult]:
        """Deliver ``message`` to every sink, one result per sink, in configuration order."""
        return [
            send(url, message, notify_type=notify_type, **self._timeouts)
            for url in self._urls.values()
        ]

    def send_to(self, mark: str, message: Message, *, notify_type: str) -> DeliveryResult | None:
        """Deliver ``message`` to the sink with fingerprint ``mark``; None if it is not set."""
        url = self._urls.get(mark)
        if url is None:
            return None
        return send(url, message, notify_type=notify_type, **self._timeouts)
