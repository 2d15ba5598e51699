"""The Prefect side of the orchestrator: carrying decisions out, and the executor that runs them."""
