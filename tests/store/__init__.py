"""Tests of the history database (onboarding.store), on SQLite and PostgreSQL."""
