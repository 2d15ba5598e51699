"""Wire models of the Partner API: lenient parsing, strict about the little we rely on.

Objects carry more fields than we model; extras are kept (``extra="allow"``) and never fatal.
Optional fields that are missing become ``None``. Only ``id`` is required (and, for a channel,
``availability_status``). Unknown ``availability_status`` values are kept as they came.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator

from onboarding.text import mask_phone


class _Wire(BaseModel):
    """Base of the wire models: keep unknown fields, accept field names or aliases."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


class AvailabilityStatus(StrEnum):
    """The documented ``availability_status`` values; the API may send others."""

    READY = "ready"
    SETTING_UP = "setting_up"
    ERROR = "error"


class SetupInfo(_Wire):
    """``channel.setup_info``: the number being onboarded and any setup error."""

    phone_number: str | None = None
    phone_name: str | None = None
    error: Any = None


class WabaAccount(_Wire):
    """``channel.waba_account``: the WhatsApp Business Account behind the channel."""

    id: str | None = None
    fb_account_status: str | None = None


class ClientRef(_Wire):
    """``channel.client``: the client a channel belongs to, as embedded in the channel."""

    id: str | None = None
    name: str | None = None
    contact_info: dict[str, Any] | None = None


class Channel(_Wire):
    """A partner channel (one phone number being onboarded or in use)."""

    id: str
    availability_status: str | None = None
    client_id: str | None = None
    status: str | None = None
    account_mode: str | None = None
    created_at: str | None = None
    modified_at: str | None = None
    terminated_at: str | None = None
    setup_info: SetupInfo | None = None
    waba_account: WabaAccount | None = None
    client: ClientRef | None = None

    @property
    def availability_known(self) -> bool:
        """True when ``availability_status`` is one of :class:`AvailabilityStatus`."""
        return self.availability_status in AvailabilityStatus.__members__.values()

    @property
    def is_unknown_status(self) -> bool:
        """True when ``availability_status`` is missing or a value we do not know (alert on it)."""
        return not self.availability_known

    @property
    def phone_number(self) -> str | None:
        """The channel's phone number, from ``setup_info``."""
        return self.setup_info.phone_number if self.setup_info else None

    @property
    def masked_phone(self) -> str:
        """The phone number with all but the last four digits hidden."""
        return mask_phone(self.phone_number)

    @property
    def client_name(self) -> str | None:
        """The embedded client's name, if the API sent it."""
        return self.client.name if self.client else None


class Client(_Wire):
    """A partner's client (the business that owns channels)."""

    id: str
    name: str | None = None
    status: str | None = None
    contact_info: dict[str, Any] | None = None
    created_at: str | None = None
    modified_at: str | None = None


class _Page(_Wire):
    """Paging fields shared by every list answer; ``total`` (when sent) bounds the paging loop.

    ``count`` is kept but never relied on: what it counts is unclear (one mock answers 3 with
    one item).
    """

    total: int | None = None
    count: int | None = None
    limit: int | None = None
    offset: int | None = None


class ChannelPage(_Page):
    """One page of ``GET /partners/{id}/channels``."""

    items: list[Channel] = Field(alias="partner_channels")


class ClientPage(_Page):
    """One page of ``GET /partners/{id}/clients``."""

    items: list[Client] = Field(alias="clients")


class ChannelApiKey(_Wire):
    """A Messaging API key created for a channel; ``api_key`` is secret and the only must.

    Accepts the flat answer ``{id, address, api_key, app_id}``, the wrapped one
    ``{"api_keys": [{...}]}`` (the first entry is the new key), and ``key`` for ``api_key``.
    """

    api_key: SecretStr = Field(validation_alias=AliasChoices("api_key", "key"))
    id: str | None = None
    address: str | None = None
    app_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        """The first entry of a wrapped ``{"api_keys": [...]}`` answer; other shapes as they are."""
        if isinstance(data, dict) and "api_key" not in data and "key" not in data:
            wrapped = data.get("api_keys")
            if isinstance(wrapped, list) and wrapped and isinstance(wrapped[0], dict):
                return wrapped[0]
            if isinstance(wrapped, dict):
                return wrapped
        return data
