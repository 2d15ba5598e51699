"""Delivery to Apprise URLs against a real loopback webhook: one outcome per sink, never raising."""

from __future__ import annotations

import pytest

from onboarding.alerts import Message, Notifier, send, sink_label
from onboarding.alerts.delivery import fingerprint, fingerprint_in
from tests.fixtures.sinks import SinkServer
from tests.servers import free_port

MESSAGE = Message(title="[ERROR] Onboarding: channel setup failed", body="- Channel: ch_1")


def test_send_reaches_the_sink(alert_sink: SinkServer) -> None:
    """A json:// URL gets the title and body as JSON and the result says sent."""
    result = send(alert_sink.url, MESSAGE, notify_type="failure")
    assert result.ok, result.error
    assert alert_sink.received[0]["title"] == MESSAGE.title
    assert alert_sink.received[0]["message"] == MESSAGE.body
    assert alert_sink.received[0]["type"] == "failure"


def test_a_500_is_a_failure_with_a_redacted_error(alert_sink: SinkServer) -> None:
    """An answer of 500 comes back as a failed result naming the error but not the URL's token."""
    alert_sink.fail_next(1)
    result = send(alert_sink.url, MESSAGE)
    assert not result.ok
    assert result.error
    assert "500" in result.error
    assert "s3cr3t-path-token" not in result.error
    assert alert_sink.received == []


def test_an_unreachable_sink_is_a_failure_not_an_exception() -> None:
    """A port nobody listens on gives a failed result within the short timeouts."""
    url = f"json://127.0.0.1:{free_port()}/hook/s3cr3t-path-token"
    result = send(url, MESSAGE)
    assert not result.ok
    assert result.error
    assert "s3cr3t-path-token" not in result.error


def test_an_invalid_url_is_a_failure() -> None:
    """A URL Apprise cannot parse is reported as failed, not raised."""
    result = send("nosuchscheme://token-abc/def", MESSAGE)
    assert not result.ok
    assert "Apprise URL" in (result.error or "")


@pytest.mark.parametrize(
    ("url", "label_start", "secret"),
    [
        pytest.param(
            "json://user:pw-123@hooks.example.com:8443/t/tok-9876",
            "json://hooks.example.com:8443",
            "tok-9876",
            id="json",
        ),
        pytest.param(
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts",
            "slack://",
            "T1JJ3T3L2",
            id="slack-token-in-host",
        ),
        pytest.param(
            "pagerduty://integ-key-123@api-key-456/", "pagerduty://", "api-key-456", id="pd"
        ),
        pytest.param(
            "mailtos://ops:hunter22@mail.example.com?to=oncall@example.com",
            "mailtos://mail.example.com",
            "hunter22",
            id="mail",
        ),
    ],
)
def test_sink_label_never_holds_tokens(url: str, label_start: str, secret: str) -> None:
    """A sink label is the scheme and, when it is a host name, the host: nothing secret."""
    label = sink_label(url)
    assert label == label_start
    assert secret not in label
    assert secret not in repr(Notifier([url]))


def test_two_sinks_on_one_host_get_two_labels_and_two_results(alert_sink: SinkServer) -> None:
    """Each URL is sent separately and its outcome is known on its own."""
    ok_url, other_url = alert_sink.url_for("/a/tok1"), alert_sink.url_for("/b/tok2")
    notifier = Notifier([ok_url, other_url])
    alert_sink.fail_next(1)
    results = notifier.send_all(MESSAGE, notify_type="failure")
    assert [r.sink for r in results] == [sink_label(ok_url)] * 2
    assert [r.fingerprint for r in results] == [fingerprint(ok_url), fingerprint(other_url)]
    assert [r.ok for r in results] == [False, True]
    assert fingerprint_in(results[0].error) == fingerprint(ok_url)
    assert alert_sink.paths == ["/b/tok2"]
    assert "tok1" not in repr(notifier)
