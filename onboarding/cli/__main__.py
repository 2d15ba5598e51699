"""``python -m onboarding.cli``: the same as the ``onboarding`` command."""

from onboarding.cli import main

main()
