"""The 360dialog onboarding orchestrator: the core, importable without Prefect."""

__version__ = "0.1.0"
