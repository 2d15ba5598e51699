"""The 360dialog Partner API client: ``HubClient``, its wire models, auth strategies and errors."""

from onboarding.hub.auth import ApiKeyAuth, BearerAuth
from onboarding.hub.client import HubClient
from onboarding.hub.errors import (
    AuthError,
    BadResponse,
    HubError,
    HubRequestError,
    HubUnavailable,
    NotFound,
    PermissionPending,
    RateLimited,
    is_retryable,
)
from onboarding.hub.models import (
    AvailabilityStatus,
    Channel,
    ChannelApiKey,
    ChannelPage,
    Client,
    ClientPage,
    ClientRef,
    SetupInfo,
    WabaAccount,
)

__all__ = [
    "ApiKeyAuth",
    "AuthError",
    "AvailabilityStatus",
    "BadResponse",
    "BearerAuth",
    "Channel",
    "ChannelApiKey",
    "ChannelPage",
    "Client",
    "ClientPage",
    "ClientRef",
    "HubClient",
    "HubError",
    "HubRequestError",
    "HubUnavailable",
    "NotFound",
    "PermissionPending",
    "RateLimited",
    "SetupInfo",
    "WabaAccount",
    "is_retryable",
]
