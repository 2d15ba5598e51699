"""The Prefect UI tells the story: a real browser finds an onboarding and reads its timeline.

Runs `onboarding up --demo` and drives Debian's Chromium through Playwright. The Prefect API
that `up` starts requires its auth string, so the browser first logs in to the UI with it.
Screenshots go to the test's temporary directory, or to ``ONBOARDING_SCREENSHOTS`` when set
(``ONBOARDING_SCREENSHOTS=docs/img ./run test tests/ui`` refreshes the README's pictures).
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.up.support import UpProcess, answers, running_up, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _onboarding_run(up: UpProcess, state: dict, **more: dict) -> dict | None:
    body = {"flow_runs": {"name": {"like_": "onboard-"}, "state": state, **more}, "limit": 5}
    runs = up.prefect_post("/flow_runs/filter", body).json()
    return runs[0] if runs else None


def _open_a_parked_run(page: Any, up: UpProcess, ui: str, *, upcoming: bool = False) -> dict:
    """Open the page of a run that is parked (or, ``upcoming``, its deployment's Upcoming tab,
    where a Prefect user finds runs scheduled ahead), and return that run.

    The demo's channels settle on their own, so the run found parked may be woken and finished
    before its page is drawn; then another parked run is taken, until a deadline.
    """
    from playwright.sync_api import TimeoutError as PageTimeout

    ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    parked = {"type": {"any_": ["SCHEDULED"]}}
    more = {"next_scheduled_start_time": {"after_": ahead}}
    deadline = time.monotonic() + 300
    while True:
        waiting = wait_for(
            lambda: _onboarding_run(up, parked, **more), timeout=300, what="a parked run"
        )
        if upcoming:
            page.goto(
                f"{ui}/deployments/deployment/{waiting['deployment_id']}", wait_until="networkidle"
            )
            page.get_by_text("Upcoming", exact=True).first.click(timeout=60_000)
            shown = page.get_by_text(waiting["name"]).first
        else:
            page.goto(f"{ui}/runs/flow-run/{waiting['id']}", wait_until="networkidle")
            shown = page.get_by_text("Scheduled").first
        try:
            shown.wait_for(timeout=30_000)
            return waiting
        except PageTimeout:
            still_parked = _onboarding_run(up, parked, **more, id={"any_": [waiting["id"]]})
            if still_parked or time.monotonic() > deadline:
                raise  # the page does not show a run that is parked: the failure to report


@pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"),
    reason="needs Debian's chromium package (.ci/run installs it; CI fails without it)",
)
def test_onboarding_runs_and_their_timeline_are_visible_in_the_prefect_ui(tmp_path: Path):
    """The flow-runs page lists onboard-* runs by name; a run's page shows its timeline artifact."""
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("ONBOARDING_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with running_up(tmp_path, "--demo", "--demo-minutes", "8") as up:
        wait_for(lambda: answers(f"{up.prefect_api}/health"), timeout=200, what="Prefect")
        ui = f"http://127.0.0.1:{up.prefect_port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{ui}/dashboard", wait_until="networkidle")
            # The UI asks for the auth string before it shows anything.
            password = page.locator("input[type=password]")
            password.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "login.png"))
            password.fill(up.auth_string() or "")
            password.press("Enter")
            page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
            waiting = _open_a_parked_run(page, up, ui)
            page.get_by_text(waiting["name"]).first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "waiting-run.png"))
            # Where a Prefect user looks for runs that are not due yet: the deployment's
            # Upcoming runs.
            _open_a_parked_run(page, up, ui, upcoming=True)
            page.screenshot(path=str(shots / "waiting-runs.png"))

            run = wait_for(
                lambda: _onboarding_run(up, {"type": {"any_": ["COMPLETED"]}}),
                timeout=300,
                what="a completed onboarding",
            )
            page.goto(f"{ui}/runs", wait_until="networkidle")
            page.get_by_text(run["name"]).first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "flow-runs.png"))

            page.get_by_text(run["name"]).first.click()
            page.wait_for_url(f"**/runs/flow-run/{run['id']}**", timeout=60_000)
            page.get_by_text("Completed").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "flow-run.png"))

            page.get_by_text("Artifacts", exact=True).first.click()
            page.get_by_text("timeline-").first.click(timeout=60_000)
            page.get_by_text("Onboarding of channel").first.wait_for(timeout=60_000)
            assert page.get_by_text("Outcome:").first.is_visible()
            page.screenshot(path=str(shots / "timeline-artifact.png"), full_page=True)
            browser.close()
        up.interrupt()
        up.wait(timeout=90)
    for name in (
        "waiting-run.png",
        "waiting-runs.png",
        "flow-runs.png",
        "flow-run.png",
        "timeline-artifact.png",
    ):
        assert (shots / name).stat().st_size > 10_000
