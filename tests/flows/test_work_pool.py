"""The `onboarding` work pool carries the worker's own job template, even one made before it."""

from __future__ import annotations

import os

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.workers.base import BaseJobConfiguration, BaseVariables

from onboarding.launcher.deploy import POOL, apply_deployments
from onboarding.orchestration.worker import BASE_JOB_TEMPLATE, OnboardingWorker


async def test_applying_the_deployments_gives_an_older_pool_the_workers_template(
    prefect_deployments, tmp_path
):
    """A pool made with Prefect's base variables (as before) gets the worker's template, which
    declares no variables: the server has nothing to validate for each run it creates."""
    variables = BaseVariables.model_json_schema()
    variables.pop("title", None)
    older = {"job_configuration": BaseJobConfiguration.json_template(), "variables": variables}
    async with get_client() as client:
        await client.update_work_pool(POOL, WorkPoolUpdate(base_job_template=older))

    await apply_deployments(env=os.environ, sweep_interval=3600, log_path=tmp_path / "deploy.log")

    async with get_client() as client:
        pool = await client.read_work_pool(POOL)
    assert pool.base_job_template == BASE_JOB_TEMPLATE
    assert pool.base_job_template["variables"]["properties"] == {}
    assert OnboardingWorker.get_default_base_job_template() == BASE_JOB_TEMPLATE
