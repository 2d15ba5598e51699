"""Wire objects of the simulated Partner API: clients, channels, partners, errors.

Objects are kept as plain JSON-ready dicts, exactly as the API would send them, so listing
10,000 channels costs no conversion. Timestamps are ISO-8601 UTC strings.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MESSAGING_API_URL",
    "error_body",
    "iso",
    "new_channel",
    "new_client",
    "new_id",
    "utcnow",
]

MESSAGING_API_URL = "https://waba-v2.360dialog.io"

Json = dict[str, Any]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the default sandbox clock)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``moment`` as an ISO-8601 UTC string with a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(suffix: str) -> str:
    """A random id in the style of 360dialog's (``<10 hex><suffix>``)."""
    return uuid.uuid4().hex[:10] + suffix


def error_body(http_code: int, message: str, details: list[Any] | None = None) -> Json:
    """The Partner API's error envelope."""
    return {
        "meta": {
            "success": False,
            "http_code": http_code,
            "developer_message": message,
            "details": details or [],
        }
    }


def new_client(*, client_id: str, partner_id: str, name: str, email: str, now: str) -> Json:
    """A client object as ``GET /partners/{pid}/clients`` returns it."""
    return {
        "id": client_id,
        "name": name,
        "partner_id": partner_id,
        "contact_info": {"email": email},
        "created_at": now,
        "modified_at": now,
        "status": "active",
    }


def new_channel(
    *,
    channel_id: str,
    client: Json,
    phone_number: str,
    availability_status: str,
    status: str,
    now: str,
) -> Json:
    """A channel object as ``GET /partners/{pid}/channels`` returns it, extra fields included."""
    return {
        "id": channel_id,
        "client_id": client["id"],
        "partner_id": client["partner_id"],
        "status": status,
        "availability_status": availability_status,
        "account_mode": "live",
        "created_at": now,
        "modified_at": now,
        "terminated_at": None,
        "setup_info": {
            "phone_number": phone_number,
            "phone_name": client["name"],
            "error": None,
        },
        "waba_account": {
            "id": "waba-" + channel_id,
            "fb_account_status": "pending_approval",
            "external_id": None,
        },
        "client": {
            "id": client["id"],
            "name": client["name"],
            "contact_info": dict(client["contact_info"]),
        },
        # Fields the orchestrator does not model: present to prove its parser is lenient.
        "integration": {"enabled": True, "hosting_platform_type": "cloud_api"},
        "current_limit": "TIER_250",
        "current_quality_rating": "High",
        "is_migrated": False,
        "type": "whatsapp",
        "version": 2,
    }
