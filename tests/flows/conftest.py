"""Fixtures shared by the flow tests."""

from __future__ import annotations

import pytest

from onboarding.orchestration.flow_runs import forget_deployment
from tests.fixtures.served import delete_waiting_onboardings


@pytest.fixture
def deployed(onboarding_env, prefect_deployments):
    """The ``onboard-channel`` deployment registered from prefect.yaml; the runs left waiting
    are deleted afterwards (a session worker would run them during later tests)."""
    forget_deployment()
    yield onboarding_env
    delete_waiting_onboardings()
