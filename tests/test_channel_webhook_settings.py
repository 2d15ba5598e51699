"""ONBOARDING_CHANNEL_WEBHOOK_*: the template and the headers are checked, values never quoted."""

from __future__ import annotations

import pytest

from onboarding.channel_webhook import ChannelWebhookError, fill_template, messaging_address
from onboarding.settings import ConfigError, load_settings

CALLBACK = {"callback_url": "https://partner.example/cb", "callback_secret": "s3cret-signing"}


def test_template_is_filled_url_encoded() -> None:
    """Both fields are filled, each percent-encoded as one path segment."""
    url = fill_template(
        "https://p.example/{client_id}/{channel_id}", channel_id="a/b", client_id="c d"
    )
    assert url == "https://p.example/c%20d/a%2Fb"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://p.example/{phone}", "only use the fields"),
        ("https://p.example/{channel_id", "not a valid template"),
        ("ftp://p.example/{channel_id}", "http(s) URL"),
    ],
)
def test_bad_templates_name_the_variable(template: str, message: str) -> None:
    """An unknown field, an unbalanced brace or a non-http URL is one line naming the variable."""
    with pytest.raises(ConfigError) as caught:
        load_settings(channel_webhook_url=template, **CALLBACK)
    assert "ONBOARDING_CHANNEL_WEBHOOK_URL" in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize("value", ['{"Authorization": 42}', "Basic sekrit-value", '["a"]'])
def test_bad_headers_are_refused_without_quoting_them(value: str) -> None:
    """Headers must be a JSON object of strings; the error never repeats the secret text."""
    with pytest.raises(ConfigError) as caught:
        load_settings(channel_webhook_headers=value)
    assert "ONBOARDING_CHANNEL_WEBHOOK_HEADERS" in str(caught.value)
    assert value not in str(caught.value)
    assert "sekrit" not in str(caught.value)


def test_url_needs_the_callback_that_delivers_the_key() -> None:
    """The webhook is set with the key the callback delivers: without a callback it is refused."""
    with pytest.raises(ConfigError, match="ONBOARDING_CALLBACK_URL"):
        load_settings(channel_webhook_url="https://p.example/{channel_id}")
    assert load_settings(channel_webhook_url="https://p.example/{channel_id}", **CALLBACK)


def test_key_is_never_sent_in_clear_text_beyond_loopback() -> None:
    """The key answer's address: https anywhere, http only on loopback, default when missing."""
    assert messaging_address(None) == "https://waba-v2.360dialog.io"
    assert messaging_address("http://127.0.0.1:8360/") == "http://127.0.0.1:8360"
    with pytest.raises(ChannelWebhookError, match="not https"):
        messaging_address("http://waba.example.com")


def test_each_header_value_is_a_known_secret() -> None:
    """Every value of ONBOARDING_CHANNEL_WEBHOOK_HEADERS is scrubbed from free text, alone too."""
    from onboarding.redact import scrub, secret_values

    settings = load_settings(channel_webhook_headers='{"Authorization": "Basic aGVhZGVyLXZhbA=="}')
    assert scrub("sent Basic aGVhZGVyLXZhbA== to x", secret_values(settings)) == "sent *** to x"
