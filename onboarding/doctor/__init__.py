"""`onboarding doctor`: what is wrong with this installation, and how to fix it.

Checks settings, the history database and its migration level, the partner-webhook event names
in the inbox, the Partner API (one request; its raw answer compared with our models), whether the
registered partner webhook URL is this receiver's (one more read; the token compared, never
shown), the Prefect API, and the alert sinks (a test notice). Each check is a :class:`Check` with
a status (✓ ok, ! warning, ✗ failure), a one-line summary and fix, and details that hold names
and counts only, never secrets or personal data. The checks themselves live in ``checks``,
``partner`` and ``webhook``.
"""

from __future__ import annotations

from onboarding.doctor.compare import PageComparison, compare_page
from onboarding.doctor.result import Check, Status
from onboarding.doctor.runner import healthy, print_checks, run_doctor

__all__ = [
    "Check",
    "PageComparison",
    "Status",
    "compare_page",
    "healthy",
    "print_checks",
    "run_doctor",
]
