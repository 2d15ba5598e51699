"""The signup redirect's pure parts: the bracketed channel list and the per-IP token bucket."""

from __future__ import annotations

import pytest

from onboarding.receiver.signup import MAX_CHANNELS, TokenBucket, parse_channel_list


@pytest.mark.parametrize(
    ("raw", "valid", "refused"),
    [
        pytest.param("[a1,b2]", ["a1", "b2"], [], id="plain"),
        pytest.param("[ a1 , b2 ]", ["a1", "b2"], [], id="spaces"),
        pytest.param("a1,b2", ["a1", "b2"], [], id="no-brackets"),
        pytest.param("[a1,,b2,]", ["a1", "b2"], [], id="empties-dropped"),
        pytest.param("[a1,a1]", ["a1"], [], id="duplicates-once"),
        pytest.param("[]", [], [], id="empty-list"),
        pytest.param(None, [], [], id="missing"),
        pytest.param('["a1"]', [], ['"a1"'], id="json-quotes-refused"),
        pytest.param("[a1,../x,b<2]", ["a1"], ["../x", "b<2"], id="unsafe-refused"),
        pytest.param("[" + "x" * 65 + "]", [], ["x" * 65], id="too-long"),
    ],
)
def test_channel_list_is_read_leniently(
    raw: str | None, valid: list[str], refused: list[str]
) -> None:
    """Brackets stripped, split on commas, trimmed, empties dropped; unsafe ids refused."""
    assert parse_channel_list(raw) == (valid, refused)


def test_more_than_max_channels_are_refused() -> None:
    """Ids beyond MAX_CHANNELS are refused rather than verified."""
    ids = [f"c{i}" for i in range(MAX_CHANNELS + 2)]
    valid, refused = parse_channel_list("[" + ",".join(ids) + "]")
    assert valid == ids[:MAX_CHANNELS]
    assert refused == ids[MAX_CHANNELS:]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_per_minute() -> None:
    """rate=30 allows 30 at once, then one more every 2 seconds; other IPs are unaffected."""
    clock = _Clock()
    bucket = TokenBucket(30, clock=clock)
    assert all(bucket.allow("1.2.3.4") for _ in range(30))
    assert not bucket.allow("1.2.3.4")
    assert bucket.allow("5.6.7.8")
    clock.now += 2.0
    assert bucket.allow("1.2.3.4")
    assert not bucket.allow("1.2.3.4")


def test_bucket_memory_is_bounded() -> None:
    """Beyond max_keys the least recently seen IPs are forgotten (they start with a full bucket)."""
    bucket = TokenBucket(1, max_keys=3, clock=_Clock())
    for ip in ("a", "b", "c", "d"):
        assert bucket.allow(ip)
    assert bucket.allow("a")  # forgotten, so full again
    assert not bucket.allow("d")
