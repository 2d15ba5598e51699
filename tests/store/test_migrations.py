"""Alembic migrations: upgrade an empty database, round-trip, and agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from onboarding.store import current_revision, downgrade, head_revision, make_engine, upgrade

TABLES = {
    "alert",
    "alert_delivery",
    "channel_snapshot",
    "inbound_event",
    "installation",
    "onboarding_run",
    "onboarding_step",
    "status_observation",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_builds_an_empty_database_to_head(empty_db_url: str) -> None:
    """Upgrading an empty database creates every table and reports the move to head."""
    assert current_revision(empty_db_url) is None
    assert upgrade(empty_db_url) == (None, head_revision())
    assert _tables(empty_db_url) == TABLES
    assert upgrade(empty_db_url) == (head_revision(), head_revision())  # idempotent


def test_downgrade_and_upgrade_round_trip(empty_db_url: str) -> None:
    """Downgrading to base drops every table; upgrading again restores them all."""
    upgrade(empty_db_url)
    assert downgrade(empty_db_url, "base") == (head_revision(), None)
    assert _tables(empty_db_url) == set()
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    assert _tables(empty_db_url) == TABLES


def test_models_and_migrations_agree(engine: Engine) -> None:
    """Autogenerate finds no difference between the models and a database migrated to head."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, SQLModel.metadata)
    assert diffs == []


def test_partial_unique_indexes_exist(engine: Engine) -> None:
    """The migration creates the partial unique indexes (one active run, one open alert)."""
    indexes = {
        index["name"]: index
        for table in ("onboarding_run", "alert")
        for index in inspect(engine).get_indexes(table)
    }
    assert indexes["uq_onboarding_run_active_channel"]["unique"]
    assert indexes["uq_alert_open_dedup_key"]["unique"]
