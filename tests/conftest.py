"""Shared fixtures live in tests/fixtures/, one module per real server the tests need."""

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.database",
    "tests.fixtures.sinks",
    "tests.fixtures.prefect",
    "tests.fixtures.partner",
    "tests.fixtures.served",
]
