"""Tests of alert policy, delivery and the completion callback."""
