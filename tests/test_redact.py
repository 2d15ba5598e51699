"""The one masking module: each kind of secret-bearing value, shown without its secret."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from onboarding.redact import (
    ScrubFilter,
    mask_apprise_urls,
    mask_token,
    mask_url,
    mask_value,
    scrub,
    secret_values,
)
from onboarding.settings import HubSettings, Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            "postgresql+psycopg://app:pw-Z9@db.internal:5432/onboarding",
            "postgresql+psycopg://app:***@db.internal:5432/onboarding",
            id="database-password",
        ),
        pytest.param(
            "postgresql+psycopg://app@db/onboarding?password=pw-Z9",
            "postgresql+psycopg://app@db/onboarding?***",
            id="database-password-in-query",
        ),
        pytest.param(
            "https://partner.example/onboarded?token=tk-Z9",
            "https://partner.example/onboarded?***",
            id="callback-query",
        ),
        pytest.param(
            "sqlite:////var/lib/onboarding.db", "sqlite:////var/lib/onboarding.db", id="sqlite"
        ),
        pytest.param(
            "https://hub.360dialog.io/api/v2", "https://hub.360dialog.io/api/v2", id="plain"
        ),
    ],
)
def test_mask_url_hides_password_and_query(url: str, shown: str) -> None:
    """A URL keeps scheme, user, host, port and path; its password and query become ***."""
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("slack://T000/B000/XXXXsecret", "slack://***", id="slack-tokens-in-path"),
        pytest.param("tgram://123456:ABCsecret/chat", "tgram://***", id="token-as-host"),
        pytest.param(
            "mailto://me:pw-Z9@gmail.com", "mailto://***@gmail.com", id="mail-credentials"
        ),
        pytest.param(
            "json://u:p@hooks.example.com:8443/t/SECRET?x=tk",
            "json://***@hooks.example.com:8443/***?***",
            id="json-everything",
        ),
        pytest.param("json://hooks.example.com", "json://hooks.example.com", id="json-host-only"),
    ],
)
def test_mask_apprise_url_keeps_only_scheme_and_real_host(url: str, shown: str) -> None:
    """An Apprise URL shows its scheme and, where it is one, its host; all else is ***."""
    assert mask_apprise_urls(url) == shown


def test_mask_apprise_urls_masks_each_of_a_list() -> None:
    """ONBOARDING_ALERT_URLS is a comma-separated list: each URL is masked on its own."""
    assert (
        mask_apprise_urls("slack://a/b/c, json://h.example/x")
        == "slack://***, json://h.example/***"
    )


def test_mask_token_keeps_four_characters() -> None:
    """A token shows its first four characters; a short one shows none."""
    assert mask_token(SecretStr("abcdefghijkl")) == "abcd***"
    assert mask_token("short") == "***"
    assert mask_token(None) == ""


def test_mask_value_masks_by_kind() -> None:
    """Secrets are ***, URLs masked, alert URLs Apprise-masked, other values as they are."""
    assert mask_value("api_key", SecretStr("k")) == "***"
    assert mask_value("database_url", "postgresql://a:b@h/d") == "postgresql://a:***@h/d"
    assert mask_value("alert_urls", "slack://a/b/c") == "slack://***"
    assert mask_value("retries", 4) == 4


def test_secret_values_finds_every_secret_a_setting_holds() -> None:
    """From the settings: SecretStr values, URL passwords and query values, Apprise tokens."""
    settings = Settings(
        database_url="postgresql+psycopg://app:db-pass-Z9@db/onb",
        callback_url="https://p.example/cb?token=cb-query-Z9",
        callback_secret=SecretStr("cb-secret-Z9"),
        alert_urls="slack://T000/B000/slack-tok-Z9,mailto://mail-user-Z9:mail-pass-Z9@gmail.com",
        webhook_token=SecretStr("hook-token-Z9"),
    )
    hub = HubSettings(api_key=SecretStr("api-key-Z9"), partner_id="p")
    found = set(secret_values(settings, hub))
    expected = {
        "db-pass-Z9",
        "cb-query-Z9",
        "cb-secret-Z9",
        "slack-tok-Z9",
        "mail-user-Z9",
        "mail-pass-Z9",
        "hook-token-Z9",
        "api-key-Z9",
    }
    assert expected <= found


def test_scrub_replaces_each_known_secret() -> None:
    """Free text loses every known secret, and keeps the rest."""
    assert scrub("key abc-123 and xyz-789 ok", ["abc-123", "xyz-789"]) == "key *** and *** ok"


def test_scrub_filter_masks_log_messages_and_tracebacks() -> None:
    """A log record's message and its traceback text are scrubbed before any handler writes."""
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s", ("tok-Z9",), None)
    try:
        raise ValueError("bad tok-Z9")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    ScrubFilter(["tok-Z9"]).filter(record)
    assert record.getMessage() == "sent ***"
    assert "tok-Z9" not in (record.exc_text or "")
    assert "bad ***" in (record.exc_text or "")
