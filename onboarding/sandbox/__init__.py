"""A faithful local simulator of the 360dialog Partner API, and the partner-webhook sender.

Production code never imports this package; the CLI's ``sandbox``/``up`` commands and the tests do.

* ``/api/v2/...``  the Partner API (see ``shared/reference/partner-api.md``);
* ``/sandbox/...`` the control API (header ``X-Sandbox-Admin-Key``): script channels, faults,
  client permission, signups and their redirect, how answers look (key shape, token answer),
  read request counts and webhook deliveries, reset.
"""

from onboarding.sandbox.app import API_PREFIX, create_app
from onboarding.sandbox.faults import Fault
from onboarding.sandbox.scenarios import DemoHook
from onboarding.sandbox.state import (
    DEFAULT_ADMIN_KEY,
    KEY_SHAPES,
    OTHER_API_KEY,
    OTHER_PARTNER_ID,
    SANDBOX_API_KEY,
    SANDBOX_PARTNER_ID,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    SandboxState,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_ADMIN_KEY",
    "KEY_SHAPES",
    "OTHER_API_KEY",
    "OTHER_PARTNER_ID",
    "SANDBOX_API_KEY",
    "SANDBOX_PARTNER_ID",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "DemoHook",
    "Fault",
    "SandboxState",
    "create_app",
]
