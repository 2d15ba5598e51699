"""Fixtures: a receiver served over loopback on the test's database, with a recording handoff."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from onboarding.receiver import Handoff, create_app
from tests.receiver.support import TOKEN, RecordingHandoff, Served, serve_receiver

StartReceiver = Callable[..., Served]


@pytest.fixture
def handoff() -> RecordingHandoff:
    """A handoff that records every event and answers ``handled``."""
    return RecordingHandoff()


@pytest.fixture
def start_receiver(engine: Engine) -> Iterator[StartReceiver]:
    """Start a receiver on ``engine`` (or another engine) with the given handoff and options."""
    with contextlib.ExitStack() as stack, httpx.Client(timeout=15) as client:

        def start(
            handoff: Handoff | None,
            *,
            on: Engine | None = None,
            log_level: str = "warning",
            **options: Any,
        ) -> Served:
            target = on if on is not None else engine
            app = create_app(engine=target, token=SecretStr(TOKEN), handoff=handoff, **options)
            base = stack.enter_context(serve_receiver(app, log_level=log_level))
            return Served(base=base, engine=target, client=client)

        yield start


@pytest.fixture
def receiver(start_receiver: StartReceiver, handoff: RecordingHandoff) -> Served:
    """A receiver with the default options and the recording handoff."""
    return start_receiver(handoff)
