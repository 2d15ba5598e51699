"""The receiver's log file keeps one record per line whatever a webhook carries (issue 20)."""

from __future__ import annotations

import logging
from pathlib import Path

from onboarding.escaping import visible
from onboarding.launcher.receiver import _log_to_file
from tests.receiver.conftest import StartReceiver
from tests.receiver.support import envelope

HOSTILE = "Acme [/] Ltd [bold]B [link=https://evil.example]x[/link] [clk](javascript:alert(1))"
CONTROL = "\x1b[2J\nFORGED INFO onboarding.receiver: owned"
CHANNEL = "ch[/]\x1b[31m\nX"


def test_receiver_log_keeps_one_record_per_line(
    tmp_path: Path, start_receiver: StartReceiver
) -> None:
    """A webhook whose channel id holds a newline and ESC writes no forged line to receiver.log."""
    logger = logging.getLogger("onboarding.receiver")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    try:
        _log_to_file(tmp_path, [])
        served = start_receiver(None)
        body = envelope("channel_created", id=CHANNEL + CONTROL, client_id="[/]cl")
        answer = served.post(body)
        assert answer.status_code < 500
        logger.info("channel %s said %s", CHANNEL + CONTROL, HOSTILE)  # a record quoting both
    finally:
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
                logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    text = (tmp_path / "receiver.log").read_text(encoding="utf-8")
    for value in (CHANNEL + CONTROL, HOSTILE):
        assert visible(value) in text, text
    assert "\x1b" not in text
    records = text.splitlines()
    assert records
    assert all(" onboarding.receiver: " in record for record in records), records
