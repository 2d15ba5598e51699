"""One TLS context per process for every outbound HTTPS client (Partner API, partner callback).

``httpx.AsyncClient()`` builds a new ``ssl.SSLContext`` and loads the CA bundle each time: about
30 ms of CPU. An onboarding opens a Partner API client and a callback client, so in the worker,
where many onboardings share one process, that was the largest single cost (BENCHMARKS.md,
"Where the time goes"). A context is safe to share between clients and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context: certificates checked, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured."""
    return httpx.create_ssl_context()
