"""Wire models parse leniently; errors classify by what a retry can achieve."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from onboarding.hub import (
    AuthError,
    BadResponse,
    Channel,
    ChannelApiKey,
    HubRequestError,
    HubUnavailable,
    NotFound,
    RateLimited,
    is_retryable,
)
from onboarding.hub.errors import error_for_response
from onboarding.lifecycle import Verdict, classify
from onboarding.text import mask_phone


def test_channel_keeps_unknown_status_and_extra_fields() -> None:
    """An unknown availability_status and unmodelled fields are kept, not rejected."""
    channel = Channel.model_validate(
        {"id": "c1", "availability_status": "migrating", "is_migrated": True, "version": 2}
    )
    assert channel.availability_status == "migrating"
    assert channel.is_unknown_status
    assert not channel.availability_known
    assert channel.model_extra == {"is_migrated": True, "version": 2}


def test_channel_missing_optionals_are_none() -> None:
    """Only id is required; everything else (availability_status too) defaults to None."""
    channel = Channel.model_validate({"id": 7, "availability_status": "ready"})
    assert channel.id == "7"
    assert channel.availability_known
    assert (channel.client_id, channel.setup_info, channel.phone_number) == (None, None, None)
    assert channel.client_name is None
    assert channel.masked_phone == ""


def test_channel_helpers_read_nested_objects() -> None:
    """phone_number comes from setup_info and client_name from the embedded client."""
    channel = Channel.model_validate(
        {
            "id": "c1",
            "availability_status": "setting_up",
            "setup_info": {"phone_number": "+4915112345678", "extra": 1},
            "client": {"id": "cl1", "name": "Acme"},
        }
    )
    assert channel.phone_number == "+4915112345678"
    assert channel.masked_phone == "+*********5678"
    assert channel.client_name == "Acme"


def test_api_key_is_secret_in_repr() -> None:
    """A created Messaging API key never shows in the model's repr or str."""
    key = ChannelApiKey.model_validate({"id": "k", "api_key": "very-secret", "app_id": "a"})
    assert isinstance(key.api_key, SecretStr)
    assert "very-secret" not in repr(key)
    assert "very-secret" not in str(key)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        pytest.param("+49 151 2345678", "+** *** ***5678", id="spaced"),
        pytest.param("123", "123", id="short"),
        pytest.param(None, "", id="none"),
    ],
)
def test_mask_phone(phone: str | None, masked: str) -> None:
    """All digits but the last four are hidden; separators stay."""
    assert mask_phone(phone) == masked


def _response(status: int, **kwargs: object) -> httpx.Response:
    request = httpx.Request("GET", "http://u:p@hub.test:8080/api/v2/partners/p1?filters=x")
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        pytest.param(401, AuthError, False, id="401"),
        pytest.param(403, AuthError, False, id="403"),
        pytest.param(404, NotFound, False, id="404"),
        pytest.param(422, HubRequestError, False, id="422"),
        pytest.param(429, RateLimited, True, id="429"),
        pytest.param(500, HubUnavailable, True, id="500"),
        pytest.param(503, HubUnavailable, True, id="503"),
    ],
)
def test_status_codes_map_to_the_tree(status: int, kind: type, retryable: bool) -> None:
    """Each status maps to its exception class, and is_retryable follows the class."""
    error = error_for_response(_response(status))
    assert type(error) is kind
    assert is_retryable(error) is retryable
    assert error.status_code == status


def test_error_message_has_developer_message_and_no_query_or_userinfo() -> None:
    """The message quotes developer_message and names the request without query or user info."""
    body = {"meta": {"success": False, "http_code": 403, "developer_message": "Not yours"}}
    error = error_for_response(_response(403, json=body))
    assert isinstance(error, AuthError)
    assert error.forbidden
    assert "Not yours" in str(error)
    assert error.request == "GET http://hub.test:8080/api/v2/partners/p1"
    assert "filters" not in str(error)
    assert "u:p" not in str(error)


def test_is_retryable_for_non_hub_errors() -> None:
    """Raw transport errors count as transient; anything else (or BadResponse) does not."""
    assert is_retryable(httpx.ConnectError("x"))
    assert not is_retryable(ValueError("x"))
    assert not is_retryable(BadResponse("x"))


def test_a_channel_without_availability_status_classifies_as_unknown() -> None:
    """A missing availability_status parses to None, which the lifecycle treats as UNKNOWN."""
    channel = Channel.model_validate({"id": "c1", "status": "ready"})
    assert channel.availability_status is None
    assert classify(channel.availability_status) is Verdict.UNKNOWN
