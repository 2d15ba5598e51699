"""The one Prefect adapter: carries the lifecycle's decisions out.

The only package that talks to Prefect's API client: it creates onboarding flow runs parked, with
their name and tags set once, wakes them by compare-and-set, cancels them and finds the ones
Prefect lost; the reconciler feeds it the decisions of :mod:`onboarding.lifecycle`.
"""
