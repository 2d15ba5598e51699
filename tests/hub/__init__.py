"""Tests of the Partner API client (onboarding.hub)."""
